package portal

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/modules/portal/portlet"
)

// Demo fills an empty database with a demo town: a city site at the root and two district
// sites under /mairie-11 and /mairie-12, with pages, portlets, news (some shared city-wide)
// and documents, so a newcomer sees a real-looking portal at once. It does nothing when a
// site exists.
func (m *Module) Demo(ctx context.Context) error {
	var n int
	if err := m.db.Read().QueryRowContext(ctx, "SELECT COUNT(*) FROM portal_sites").Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	city, err := m.demoSite(ctx, "Ville de Belleville-sur-Loire", "", "#1d4ed8", "Place de l'Hôtel de Ville, 45000 Belleville", "01 23 45 67 00", "")
	if err != nil {
		return err
	}
	var districts []*Site
	for i, d := range []struct{ name, prefix, colour string }{
		{"Mairie du 11e arrondissement", "/mairie-11", "#8a2be2"},
		{"Mairie du 12e arrondissement", "/mairie-12", "#0f766e"},
	} {
		s, err := m.demoSite(ctx, d.name, d.prefix, d.colour, fmt.Sprintf("%d, boulevard Voltaire, 45011 Belleville", 12+i), fmt.Sprintf("01 23 45 67 1%d", i+1), d.name)
		if err != nil {
			return err
		}
		districts = append(districts, s)
	}
	shared := []int64{districts[0].ID, districts[1].ID}
	day := 24 * time.Hour
	now := m.now().Truncate(time.Hour)
	cityNews := []NewsInput{
		{Slug: "plan-canicule", Title: "Plan canicule : inscrivez-vous au registre", Summary: "Les personnes âgées ou isolées peuvent s'inscrire pour être appelées pendant les fortes chaleurs.",
			Body: "Le registre est **confidentiel**. Inscription en ligne, par téléphone ou en mairie.\n\nLes salles rafraîchies sont ouvertes de 10 h à 18 h.", Tags: []string{"santé", "été"}},
		{Slug: "budget-participatif-2027", Title: "Budget participatif 2027 : déposez vos projets", Summary: "Cinq millions d'euros pour des projets proposés et choisis par les habitants.",
			Body: "Les projets peuvent concerner la végétalisation, les mobilités, la culture ou la solidarité.", Tags: []string{"participation"}},
		{Slug: "inscriptions-scolaires", Title: "Inscriptions scolaires pour la rentrée", Summary: "Les inscriptions en maternelle et en élémentaire sont ouvertes jusqu'au 31 mars.",
			Body: "Munissez-vous du livret de famille et d'un justificatif de domicile de moins de trois mois.", Tags: []string{"écoles", "enfance"}},
	}
	for i, in := range cityNews {
		in.Published, in.PublishedAt, in.SharedWith = true, now.Add(-time.Duration(i+1)*day), shared
		if _, err := m.SaveNews(ctx, city.ID, 0, in); err != nil {
			return err
		}
	}
	for _, d := range districts {
		for i, t := range []string{"Fête de quartier place Léon-Blum", "Travaux de voirie rue de la Roquette", "Nouvelle bibliothèque éphémère",
			"Conseil d'arrondissement du mois", "Collecte des encombrants", "Atelier numérique pour les seniors",
			"Vide-grenier de printemps", "Permanence de l'adjointe au logement", "Concert au square", "Réunion publique sur le plan vélo"} {
			in := NewsInput{Slug: slugFile(t), Title: t, Published: true, PublishedAt: now.Add(-time.Duration(i*3+2) * day),
				Summary: "Rendez-vous proposé par la " + strings.ToLower(d.Name[:1]) + d.Name[1:] + " : horaires, lieux et modalités d'inscription.",
				Body:    "Toutes les informations pratiques sont disponibles à l'accueil de la mairie et sur ce site.", Tags: []string{"quartier"}}
			if _, err := m.SaveNews(ctx, d.ID, 0, in); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *Module) demoSite(ctx context.Context, name, prefix, colour, address, phone, legal string) (*Site, error) {
	s, err := m.CreateSite(ctx, SiteInput{OrgID: 1, Name: name, Prefix: prefix, Lang: "fr",
		Contact: Contact{Address: address, Phone: phone, Email: "contact@belleville.example.org",
			Hours: []string{"Lundi, mardi, mercredi, vendredi : 8 h 30 – 17 h", "Jeudi : 8 h 30 – 19 h 30", "Samedi : 9 h – 12 h 30 (état civil)"}},
		Legal: "Directeur de la publication : le maire. Hébergement : service numérique de la ville."}, 0)
	if err != nil {
		return nil, err
	}
	if err := m.UpdateTheme(ctx, s.ID, Theme{Primary: colour, Footer: "Ville de Belleville-sur-Loire — services publics en ligne",
		Social: []Link{{Title: "Mastodon", URL: "https://social.example.org/@belleville"}}}); err != nil {
		return nil, err
	}
	var banner, doc1, doc2 *Media
	if banner, err = m.Upload(ctx, s.ID, "Vue de la place de la mairie", demoPNG(1200, 500)); err != nil {
		return nil, err
	}
	if doc1, err = m.Upload(ctx, s.ID, "Guide des démarches 2027", demoPDF("Guide des demarches")); err != nil {
		return nil, err
	}
	if doc2, err = m.Upload(ctx, s.ID, "Compte rendu du dernier conseil", demoPDF("Compte rendu")); err != nil {
		return nil, err
	}
	pages, err := listPages(ctx, m.db.Read(), s.ID)
	if err != nil || len(pages) == 0 {
		return nil, fmt.Errorf("demo: no home page: %v", err)
	}
	home := pages[0]
	links := "Prendre rendez-vous | /rdv\nSignaler un problème dans la rue | /signalements\nPayer la cantine | https://paiement.example.org\nÉtat civil | " + prefix + "/demarches/etat-civil\nListes électorales | " + prefix + "/demarches\nUrbanisme | " + prefix + "/vie-pratique"
	var intro strings.Builder
	intro.WriteString("Bienvenue sur le site de la **" + name + "**. Retrouvez ici vos démarches, l'actualité de votre quartier et les horaires de vos services publics.\n\n")
	for _, t := range []string{"Petite enfance", "Écoles et périscolaire", "Seniors", "Sport", "Culture", "Solidarités", "Environnement", "Propreté"} {
		fmt.Fprintf(&intro, "- **%s** : accueil, inscriptions, tarifs et contacts du service, avec les documents à fournir et les délais habituels.\n", t)
	}
	var services strings.Builder
	for _, t := range []string{"Accueil et orientation", "État civil", "Élections", "Affaires générales", "Recensement citoyen", "Urbanisme",
		"Logement", "Action sociale", "Petite enfance", "Écoles", "Centres de loisirs", "Jeunesse", "Sport", "Culture", "Bibliothèques",
		"Conservatoire", "Démocratie locale", "Conseils de quartier", "Propreté", "Espaces verts", "Voirie", "Stationnement", "Sécurité", "Cimetières"} {
		fmt.Fprintf(&services, "### %s\n\nLe service %s vous accueille du lundi au vendredi, sur rendez-vous ou sans rendez-vous selon les démarches. Préparez vos pièces justificatives : une pièce d'identité en cours de validité et un justificatif de domicile de moins de trois mois. Les demandes peuvent aussi être faites en ligne.\n\n", t, strings.ToLower(t))
	}
	content := []Placement{
		{Zone: "hero", Type: "alert", Config: portlet.Config{"level": "warning", "title": "Fermeture exceptionnelle de l'accueil samedi", "text": "Les démarches en ligne restent ouvertes."}},
		{Zone: "hero", Type: "image", Config: portlet.Config{"media": strconv.FormatInt(banner.ID, 10), "alt": "La place de la mairie un jour de marché", "caption": "La place de la mairie"}},
		{Zone: "main", Type: "richtext", Config: portlet.Config{"title": "Votre mairie", "body": intro.String()}},
		{Zone: "main", Type: "news", Config: portlet.Config{"title": "Actualités", "limit": "12"}},
		{Zone: "main", Type: "richtext", Config: portlet.Config{"title": "Les services de la mairie", "body": services.String()}},
		{Zone: "main", Type: "catalogue", Config: portlet.Config{"title": "Vos démarches en ligne"}},
		{Zone: "aside", Type: "contact", Config: portlet.Config{"title": "Nous contacter"}},
		{Zone: "aside", Type: "links", Config: portlet.Config{"title": "Accès rapides", "links": links}},
		{Zone: "aside", Type: "documents", Config: portlet.Config{"title": "Documents utiles", "media": fmt.Sprintf("%d,%d", doc1.ID, doc2.ID)}},
	}
	if _, err := m.SaveDraft(ctx, home.ID, DraftInput{Title: name, Description: "Site officiel de la " + name, Layout: "home", Visibility: Public, InMenu: true, Content: content}); err != nil {
		return nil, err
	}
	if err := m.Publish(ctx, home.ID, nil, nil); err != nil {
		return nil, err
	}
	tree := []struct{ parent, slug, title, body string }{
		{"", "demarches", "Démarches", "Toutes vos démarches administratives : état civil, élections, urbanisme, logement."},
		{"demarches", "etat-civil", "État civil", "Actes de naissance, de mariage et de décès ; reconnaissance anticipée ; changement de prénom."},
		{"", "vie-pratique", "Vie pratique", "Écoles, équipements sportifs, bibliothèques et marchés de votre quartier."},
		{"vie-pratique", "ecoles", "Écoles", "Inscriptions scolaires, restauration scolaire, centres de loisirs et études surveillées."},
		{"", "contact", "Contact", "Écrivez-nous ou venez nous voir aux horaires d'ouverture."},
	}
	ids := map[string]int64{"": home.ID}
	for _, t := range tree {
		p, err := m.CreatePage(ctx, s.ID, ids[t.parent], t.slug, t.title)
		if err != nil {
			return nil, err
		}
		ids[t.slug] = p.ID
		content := []Placement{{Zone: "main", Type: "richtext", Config: portlet.Config{"body": t.body}}}
		layout := "one"
		if t.slug == "contact" {
			layout = "two"
			content = append(content, Placement{Zone: "aside", Type: "contact", Config: portlet.Config{}})
		}
		if _, err := m.SaveDraft(ctx, p.ID, DraftInput{Title: t.title, Layout: layout, Visibility: Public, InMenu: true, Content: content}); err != nil {
			return nil, err
		}
		if err := m.Publish(ctx, p.ID, nil, nil); err != nil {
			return nil, err
		}
	}
	if _, err := m.AddMenuLink(ctx, MenuLink{SiteID: s.ID, Menu: "main", Title: "Actualités", URL: prefix + "/actualites"}); err != nil {
		return nil, err
	}
	if _, err := m.AddMenuLink(ctx, MenuLink{SiteID: s.ID, Menu: "footer", Title: "Contact", PageID: ids["contact"]}); err != nil {
		return nil, err
	}
	return getSite(ctx, m.db.Read(), s.ID)
}

func demoPNG(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(40 + x*120/w), uint8(90 + y*100/h), 160, 255})
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}

// demoPDF is a minimal valid one-page PDF.
func demoPDF(text string) []byte {
	stream := fmt.Sprintf("BT /F1 18 Tf 72 720 Td (%s) Tj ET", text)
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(stream), stream),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}
