package workflow

import (
	"fmt"
	"html/template"
	"strings"
)

// Graph renders a workflow as an SVG diagram: states in columns by their distance from the
// initial state, actions as arrows. It is drawn on the server (no script) and carries a title
// and description; the page lists the same states and actions as text for screen readers.
func Graph(d *Definition, title string) template.HTML {
	const (
		bw, bh   = 170.0, 52.0
		gx, gy   = 90.0, 34.0
		margin   = 20.0
		fontSize = 12
	)
	level := map[string]int{}
	var order []string
	if in := d.Initial(); in != nil {
		level[in.Key] = 0
		queue := []string{in.Key}
		for len(queue) > 0 {
			s := queue[0]
			queue = queue[1:]
			order = append(order, s)
			for _, a := range d.Actions {
				if a.AppliesIn(s) {
					if _, seen := level[a.To]; !seen && d.StateByKey(a.To) != nil {
						level[a.To] = level[s] + 1
						queue = append(queue, a.To)
					}
				}
			}
		}
	}
	maxLevel := 0
	for _, l := range level {
		maxLevel = max(maxLevel, l)
	}
	for _, s := range d.States { // unreachable states go in a last column
		if _, ok := level[s.Key]; !ok {
			level[s.Key] = maxLevel + 1
			order = append(order, s.Key)
		}
	}
	rows := map[int]int{}
	pos := map[string][2]float64{}
	width, height := 0.0, 0.0
	for _, k := range order {
		l := level[k]
		x := margin + float64(l)*(bw+gx)
		y := margin + float64(rows[l])*(bh+gy)
		rows[l]++
		pos[k] = [2]float64{x, y}
		width, height = max(width, x+bw+margin), max(height, y+bh+margin)
	}
	height += 40 // room for arrows looping back under the boxes
	esc := template.HTMLEscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="pv-graph" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-labelledby="wf-graph-title wf-graph-desc">`,
		width, height, width, height)
	fmt.Fprintf(&b, `<title id="wf-graph-title">%s</title><desc id="wf-graph-desc">%d states, %d actions</desc>`, esc(title), len(d.States), len(d.Actions))
	b.WriteString(`<defs><marker id="wf-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>`)
	for _, a := range d.Actions {
		to, ok := pos[a.To]
		if !ok {
			continue
		}
		for _, f := range a.From {
			from, ok := pos[f]
			if !ok {
				continue
			}
			dash := ""
			if a.Kind == KindAuto {
				dash = ` stroke-dasharray="5 4"`
			}
			var path string
			var lx, ly float64
			if to[0] > from[0] {
				x1, y1 := from[0]+bw, from[1]+bh/2
				x2, y2 := to[0], to[1]+bh/2
				path = fmt.Sprintf("M%.0f,%.0f C%.0f,%.0f %.0f,%.0f %.0f,%.0f", x1, y1, x1+gx/2, y1, x2-gx/2, y2, x2, y2)
				lx, ly = (x1+x2)/2, (y1+y2)/2-4
			} else { // backwards or same column: loop under the boxes
				x1, y1 := from[0]+bw/2, from[1]+bh
				x2, y2 := to[0]+bw/2, to[1]+bh
				low := max(y1, y2) + 30
				path = fmt.Sprintf("M%.0f,%.0f C%.0f,%.0f %.0f,%.0f %.0f,%.0f", x1, y1, x1, low, x2, low, x2, y2)
				lx, ly = (x1+x2)/2, low-2
			}
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#333" stroke-width="1.5"%s marker-end="url(#wf-arrow)"/>`, path, dash)
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="%d" text-anchor="middle" fill="#1a1a1a">%s</text>`, lx, ly, fontSize-1, esc(a.Title))
		}
	}
	for _, s := range d.States {
		p := pos[s.Key]
		fill, stroke, sw := "#ffffff", "#333", "1.5"
		if s.Initial {
			stroke, sw = "#0b5394", "3"
		}
		if s.Final {
			fill = "#e8e8e8"
		}
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" rx="8" fill="%s" stroke="%s" stroke-width="%s"/>`, p[0], p[1], bw, bh, fill, stroke, sw)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="%d" text-anchor="middle" fill="#1a1a1a" font-weight="bold">%s</text>`,
			p[0]+bw/2, p[1]+22, fontSize, esc(truncate(s.Title, 24)))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="%d" text-anchor="middle" fill="#333">%s</text>`,
			p[0]+bw/2, p[1]+40, fontSize-2, esc(truncate(s.PublicLabel, 28)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
