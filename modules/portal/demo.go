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
		for i, t := range []struct{ title, summary string }{
			{"Fête de quartier place Léon-Blum", "Stands des associations, concerts et jeux pour les enfants tout l'après-midi ; les riverains qui souhaitent tenir un stand s'inscrivent à l'accueil avant le 10."},
			{"Travaux de voirie rue de la Roquette", "Réfection de la chaussée et élargissement des trottoirs pendant trois semaines : la circulation est alternée et deux arrêts de bus sont déplacés."},
			{"Nouvelle bibliothèque éphémère", "Un conteneur aménagé propose livres, jeux et revues au square pendant tout l'hiver, avec des lectures pour les tout-petits le mercredi matin."},
			{"Conseil d'arrondissement du mois", "L'ordre du jour, les délibérations et la retransmission en direct : la séance est publique et les habitants peuvent poser leurs questions à la fin."},
			{"Collecte des encombrants", "Prenez rendez-vous en ligne pour faire enlever gratuitement vos meubles et appareils ; la collecte a lieu devant chez vous le jour choisi."},
			{"Atelier numérique pour les seniors", "Apprendre à faire ses démarches en ligne, utiliser une tablette et échanger avec ses proches : six séances gratuites, sur inscription."},
			{"Vide-grenier de printemps", "Les inscriptions des exposants ouvrent le 1er mars ; les emplacements sont réservés en priorité aux habitants de l'arrondissement."},
			{"Permanence de l'adjointe au logement", "Sans rendez-vous le jeudi de 14 h à 17 h, pour les demandes de logement social, les échanges et les difficultés avec un bailleur."},
			{"Concert au square", "L'orchestre du conservatoire joue en plein air le dernier dimanche du mois ; en cas de pluie, le concert a lieu dans la salle des fêtes."},
			{"Réunion publique sur le plan vélo", "Présentation des nouvelles pistes cyclables et des stationnements prévus dans le quartier, suivie d'un temps d'échange avec les habitants."},
		} {
			in := NewsInput{Slug: slugFile(t.title), Title: t.title, Published: true, PublishedAt: now.Add(-time.Duration(i*3+2) * day), Summary: t.summary,
				Body: t.summary + "\n\nToutes les informations pratiques sont disponibles à l'accueil de la " + strings.ToLower(d.Name[:1]) + d.Name[1:] + " et sur ce site.", Tags: []string{"quartier"}}
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
	banner, err := m.Upload(ctx, s.ID, "Vue de la place de la mairie", demoPNG(1200, 500))
	if err != nil {
		return nil, err
	}
	var docs []string
	for _, t := range []string{"Guide des démarches 2027", "Compte rendu du dernier conseil", "Tarifs de la restauration scolaire",
		"Calendrier des collectes", "Plan du quartier et des équipements", "Règlement des salles municipales"} {
		d, err := m.Upload(ctx, s.ID, t, demoPDF(t))
		if err != nil {
			return nil, err
		}
		docs = append(docs, strconv.FormatInt(d.ID, 10))
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
	var agenda strings.Builder
	for i, e := range []struct{ what, where string }{
		{"Conseil d'arrondissement", "salle des fêtes de la mairie, 19 h"},
		{"Permanence de l'écrivain public", "accueil de la mairie, 14 h – 17 h"},
		{"Atelier compostage", "jardin partagé de la rue Saint-Maur, 10 h"},
		{"Réunion du conseil de quartier Nation-Alexandre-Dumas", "école élémentaire de la rue Titon, 18 h 30"},
		{"Don du sang", "salle des fêtes, 10 h – 18 h"},
		{"Bal des seniors", "gymnase Japy, 14 h 30"},
		{"Collecte de jouets", "hall de la mairie, 9 h – 17 h"},
		{"Cinéma en plein air", "square Maurice-Gardette, 21 h"},
	} {
		fmt.Fprintf(&agenda, "- **%d %s** — %s, %s.\n", 3+i*3, "décembre", e.what, e.where)
	}
	var elected strings.Builder
	elected.WriteString("Le maire d'arrondissement et ses adjoints reçoivent sur rendez-vous, à prendre auprès du secrétariat des élus.\n\n")
	for _, d := range []string{"l'urbanisme et l'espace public", "la petite enfance et la famille", "les affaires scolaires", "la culture et le patrimoine",
		"la solidarité et la lutte contre l'exclusion", "le sport et la jeunesse", "la démocratie locale et la vie associative", "la propreté et les espaces verts"} {
		fmt.Fprintf(&elected, "- Adjointe ou adjoint chargé de %s : permanence le premier mardi du mois, de 17 h à 19 h.\n", d)
	}
	var hours strings.Builder
	for _, e := range []struct{ name, when string }{
		{"Piscine Georges-Rigal", "mardi au vendredi 7 h – 8 h 30 et 11 h 30 – 22 h ; samedi et dimanche 8 h – 18 h"},
		{"Bibliothèque Parmentier", "mardi, jeudi, vendredi 13 h – 19 h ; mercredi et samedi 10 h – 18 h"},
		{"Gymnase Japy", "lundi au vendredi 8 h – 22 h 30 ; samedi 9 h – 20 h ; dimanche 9 h – 13 h"},
		{"Maison des associations", "lundi au vendredi 9 h – 21 h ; samedi 10 h – 17 h"},
		{"Centre social", "lundi au vendredi 9 h 30 – 12 h 30 et 14 h – 18 h"},
		{"Marché couvert", "mardi au samedi 8 h – 13 h et 16 h – 19 h 30 ; dimanche 8 h – 13 h 30"},
		{"Déchetterie mobile", "le deuxième samedi du mois, place Léon-Blum, 9 h – 13 h"},
		{"Relais petite enfance", "lundi, mardi et jeudi 9 h – 17 h, sur rendez-vous le mercredi"},
	} {
		fmt.Fprintf(&hours, "- **%s** : %s.\n", e.name, e.when)
	}
	hours.WriteString("\nLes horaires peuvent changer pendant les vacances scolaires et les jours fériés : vérifiez-les avant de vous déplacer.\n")
	var faq strings.Builder
	for _, qa := range []struct{ q, a string }{
		{"Comment obtenir un acte de naissance ?", "La demande se fait en ligne, gratuitement, auprès de la mairie du lieu de naissance. L'acte est envoyé par courrier sous huit jours ; il n'est jamais payant, méfiez-vous des sites qui le facturent."},
		{"Où renouveler ma carte d'identité ?", "Dans n'importe quelle mairie équipée d'un dispositif de recueil, sur rendez-vous. Faites d'abord une pré-demande en ligne et apportez son numéro, une photo récente et un justificatif de domicile."},
		{"Comment m'inscrire sur les listes électorales ?", "En ligne, en mairie ou par courrier, jusqu'au sixième vendredi précédant le scrutin. Munissez-vous d'une pièce d'identité et d'un justificatif de domicile de moins de trois mois."},
		{"Comment réserver une salle municipale ?", "Les associations du quartier réservent les salles auprès de la maison des associations, au moins trois semaines à l'avance ; le règlement des salles est dans les documents utiles."},
		{"Qui contacter pour un problème de voirie ?", "Signalez-le en ligne avec une photo et l'adresse : le service concerné est prévenu aussitôt et vous êtes informé de la suite donnée."},
		{"Comment inscrire mon enfant à la cantine ?", "L'inscription à la restauration scolaire se fait en même temps que l'inscription scolaire ; le tarif dépend du quotient familial, calculé sur présentation de l'avis d'imposition."},
	} {
		fmt.Fprintf(&faq, "### %s\n\n%s\n\n", qa.q, qa.a)
	}
	topTasks := "Demander un acte de naissance | " + prefix + "/demarches/etat-civil\nRenouveler sa carte d'identité ou son passeport | " + prefix + "/demarches\n" +
		"S'inscrire sur les listes électorales | " + prefix + "/demarches\nInscrire son enfant à l'école | " + prefix + "/vie-pratique/ecoles\n" +
		"Déclarer une naissance | " + prefix + "/demarches/etat-civil\nSe pacser | " + prefix + "/demarches/etat-civil\n" +
		"Recensement citoyen à 16 ans | " + prefix + "/demarches\nDemander un permis de construire | " + prefix + "/demarches\n" +
		"Réserver une salle municipale | " + prefix + "/vie-pratique\nFaire enlever un encombrant | " + prefix + "/vie-pratique"
	newcomers := "Vous venez d'emménager dans l'arrondissement ? Bienvenue !\n\n" +
		"1. **Inscrivez-vous sur les listes électorales** pour voter aux prochaines élections.\n" +
		"2. **Inscrivez vos enfants** à l'école, à la cantine et au centre de loisirs.\n" +
		"3. **Découvrez les équipements** du quartier : piscine, bibliothèques, gymnases, conservatoire.\n" +
		"4. **Rejoignez un conseil de quartier** pour participer aux projets qui vous concernent.\n" +
		"5. **Abonnez-vous à la lettre d'information** de la mairie pour suivre l'actualité.\n\n" +
		"Une réunion d'accueil des nouveaux habitants a lieu chaque trimestre dans la salle des fêtes : le maire d'arrondissement et les services y présentent la vie du quartier et répondent à vos questions.\n"
	councils := "Les conseils de quartier sont ouverts à toutes les personnes qui vivent, travaillent ou étudient dans le quartier. Ils se réunissent en séance plénière au moins deux fois par an et en commissions thématiques tout au long de l'année.\n\n" +
		"- **Belleville-Saint-Maur** : commissions cadre de vie, solidarités, culture.\n" +
		"- **Léon-Blum-Folie-Regnault** : commissions propreté, mobilités, jeunesse.\n" +
		"- **Nation-Alexandre-Dumas** : commissions espaces verts, commerce de proximité.\n" +
		"- **République-Saint-Ambroise** : commissions patrimoine, fêtes de quartier.\n" +
		"- **Bastille-Popincourt** : commissions sécurité routière, vie nocturne.\n\n" +
		"Chaque conseil dispose d'un budget de fonctionnement et d'investissement pour financer de petits projets : bancs, jardinières, fêtes, panneaux d'information.\n"
	equipments := "Piscine Georges-Rigal | " + prefix + "/vie-pratique\nGymnase Japy | " + prefix + "/vie-pratique\nBibliothèque Parmentier | " + prefix + "/vie-pratique\n" +
		"Conservatoire municipal | " + prefix + "/vie-pratique\nMaison des associations | " + prefix + "/vie-pratique\nCentre social | " + prefix + "/vie-pratique\n" +
		"Jardin partagé | " + prefix + "/vie-pratique\nMarché couvert | " + prefix + "/vie-pratique"
	content := []Placement{
		{Zone: "hero", Type: "alert", Config: portlet.Config{"level": "warning", "title": "Fermeture exceptionnelle de l'accueil samedi", "text": "Les démarches en ligne restent ouvertes."}},
		{Zone: "hero", Type: "image", Config: portlet.Config{"media": strconv.FormatInt(banner.ID, 10), "alt": "La place de la mairie un jour de marché", "caption": "La place de la mairie"}},
		{Zone: "main", Type: "richtext", Config: portlet.Config{"title": "Votre mairie", "body": intro.String()}},
		{Zone: "main", Type: "news", Config: portlet.Config{"title": "Actualités", "limit": "12"}},
		{Zone: "main", Type: "richtext", Config: portlet.Config{"title": "Les services de la mairie", "body": services.String()}},
		{Zone: "main", Type: "catalogue", Config: portlet.Config{"title": "Vos démarches en ligne"}},
		{Zone: "aside", Type: "contact", Config: portlet.Config{"title": "Nous contacter"}},
		{Zone: "aside", Type: "links", Config: portlet.Config{"title": "Accès rapides", "links": links}},
		{Zone: "aside", Type: "documents", Config: portlet.Config{"title": "Documents utiles", "media": strings.Join(docs, ",")}},
		{Zone: "aside", Type: "richtext", Config: portlet.Config{"title": "Agenda du mois", "body": agenda.String()}},
		{Zone: "aside", Type: "links", Config: portlet.Config{"title": "Équipements du quartier", "links": equipments}},
		{Zone: "main", Type: "richtext", Config: portlet.Config{"title": "Vos élus", "body": elected.String()}},
		{Zone: "main", Type: "richtext", Config: portlet.Config{"title": "Questions fréquentes", "body": faq.String()}},
		{Zone: "main", Type: "richtext", Config: portlet.Config{"title": "Nouveaux habitants", "body": newcomers}},
		{Zone: "main", Type: "richtext", Config: portlet.Config{"title": "Conseils de quartier", "body": councils}},
		{Zone: "aside", Type: "links", Config: portlet.Config{"title": "Démarches les plus demandées", "links": topTasks}},
		{Zone: "aside", Type: "richtext", Config: portlet.Config{"title": "Horaires des équipements", "body": hours.String()}},
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
