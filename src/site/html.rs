//! HTML building blocks: escaping, the page frame, and a report [`Table`] as an accessible
//! HTML table.
//!
//! Everything a page shows that came from a snapshot (domain and host names, TLSA records,
//! server banners, error texts) was sent by a peer on the Internet, so every interpolated
//! string goes through [`esc`]; the pages also carry a Content-Security-Policy that forbids
//! scripts, so a mistake in escaping still runs no code.

use std::fmt::Write as _;

use crate::report::table::{signed, thousands, Cell, Kind, Table};

/// `s` escaped for HTML text and for double- or single-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            // Control characters (a banner may hold any byte) are shown, not interpreted.
            c if c.is_control() && c != '\n' && c != '\t' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

/// The site's one stylesheet (`style.css`): readable on screen, plain on paper.
pub const CSS: &str = r#":root { color-scheme: light; --fg: #1a1a1a; --muted: #5a5a5a; --line: #d0d0d0;
  --head: #f2f4f7; --accent: #0b5cad; --up: #126b2e; --down: #a3161b; }
* { box-sizing: border-box; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
  color: var(--fg); margin: 0 auto; max-width: 76rem; padding: 0 1rem 2rem; }
a { color: var(--accent); }
a:focus { outline: 2px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -9999px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .25rem .5rem; }
header { border-bottom: 2px solid var(--fg); margin-bottom: 1rem; }
header p { margin: .25rem 0; color: var(--muted); }
nav ul { list-style: none; padding: 0; margin: .5rem 0; display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
nav a[aria-current="page"] { font-weight: bold; color: var(--fg); text-decoration: none; }
h1 { font-size: 1.6rem; margin: .75rem 0 .25rem; }
h2 { font-size: 1.3rem; margin-top: 2rem; }
h3 { font-size: 1.1rem; margin-top: 1.5rem; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr)); gap: .75rem;
  margin: 1rem 0; padding: 0; list-style: none; }
.figures li { border: 1px solid var(--line); border-radius: 4px; padding: .5rem .75rem; }
.figures .value { display: block; font-size: 1.6rem; font-weight: bold; font-variant-numeric: tabular-nums; }
.figures .label { color: var(--muted); }
.table-wrap { overflow-x: auto; margin: 1rem 0; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: bold; padding: .25rem 0; caption-side: top; }
caption .csv { font-weight: normal; margin-left: .75rem; }
th, td { border: 1px solid var(--line); padding: .2rem .5rem; vertical-align: top; text-align: left; }
thead th { background: var(--head); }
tbody th { font-weight: normal; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.up { color: var(--up); }
td.down { color: var(--down); }
td { overflow-wrap: break-word; }
tbody th { white-space: nowrap; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .9em; overflow-wrap: anywhere; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); }
.note { color: var(--muted); }
.verdict-dane_valid { color: var(--up); font-weight: bold; }
.verdict-dane_failing, .verdict-failing, .verdict-tlsa_failed { color: var(--down); font-weight: bold; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dl.facts dt { font-weight: bold; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
footer { margin-top: 3rem; border-top: 1px solid var(--line); color: var(--muted); font-size: .9rem; }
@media print {
  body { max-width: none; font-size: 10pt; color: #000; }
  nav, .skip, .csv { display: none; }
  a { color: #000; text-decoration: none; }
  header { border-bottom: 1px solid #000; }
  .table-wrap { overflow: visible; }
  table { page-break-inside: auto; }
  tr, figure, .figures li { break-inside: avoid; }
  thead { display: table-header-group; }
  h2, h3 { break-after: avoid; }
  td.up, td.down, .verdict-dane_valid, .verdict-dane_failing { color: #000; }
}
"#;

/// The site's icon (`favicon.svg`): without one, every browser asks for `/favicon.ico` and
/// logs a failed request.
pub const FAVICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\">\
<rect width=\"32\" height=\"32\" rx=\"6\" fill=\"#0b5cad\"/><path d=\"M10 15v-3a6 6 0 0 1 12 0v3\" \
fill=\"none\" stroke=\"#fff\" stroke-width=\"3\"/><rect x=\"7\" y=\"15\" width=\"18\" height=\"12\" \
rx=\"2\" fill=\"#fff\"/></svg>\n";

/// One entry of the navigation bar: file (relative to the site root) and label.
pub const NAV: &[(&str, &str)] = &[
    ("index.html", "Overview"),
    ("ranking.html", "Provider ranking"),
    ("adopters.html", "Slow adopters"),
    ("failures.html", "Failures"),
    ("trend.html", "Trend"),
    ("lookup/index.html", "Domain lookup"),
];

/// The frame of a page: head (charset, viewport, CSP, stylesheet), skip link, header with
/// the navigation, `main`, footer.
///
/// Exists so every page has the same accessible skeleton and the same security policy.
pub struct Page<'a> {
    /// `<title>` and the `h1`.
    pub title: &'a str,
    /// The line under the title (month and snapshot).
    pub subtitle: &'a str,
    /// The page's path relative to the site root (`index.html`, `providers/x.html`): decides
    /// the relative prefix of links and which navigation entry is current.
    pub path: &'a str,
    /// The footer text (provenance).
    pub footer: &'a str,
}

impl Page<'_> {
    /// The prefix that leads from this page to the site root (`""` or `"../"`).
    pub fn root(&self) -> String {
        "../".repeat(self.path.matches('/').count())
    }

    /// The whole document around `body` (which must already be escaped HTML).
    pub fn render(&self, body: &str) -> String {
        let root = self.root();
        let mut o = String::with_capacity(body.len() + 2048);
        let _ = write!(
            o,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'\">\n\
             <meta name=\"referrer\" content=\"no-referrer\">\n\
             <title>{} — DANE for SMTP survey</title>\n\
             <link rel=\"icon\" href=\"{root}favicon.svg\" type=\"image/svg+xml\">\n\
             <link rel=\"stylesheet\" href=\"{root}style.css\">\n</head>\n<body>\n\
             <a class=\"skip\" href=\"#main\">Skip to content</a>\n<header>\n\
             <p>DANE for SMTP survey</p>\n<nav aria-label=\"Report pages\"><ul>\n",
            esc(self.title)
        );
        for (href, label) in NAV {
            let current = if *href == self.path {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = writeln!(
                o,
                "<li><a href=\"{}{}\"{current}>{}</a></li>",
                esc(&root),
                esc(href),
                esc(label)
            );
        }
        let _ = write!(
            o,
            "</ul></nav>\n</header>\n<main id=\"main\">\n<h1>{}</h1>\n<p class=\"note\">{}</p>\n{body}\
             </main>\n<footer><p>{}</p></footer>\n</body>\n</html>\n",
            esc(self.title),
            esc(self.subtitle),
            esc(self.footer)
        );
        o
    }
}

/// A cell's link: `(column, row) → href` relative to the page, or none.
pub type CellLink<'a> = &'a dyn Fn(usize, &[Cell]) -> Option<String>;

/// How to render one [`Table`] as HTML.
///
/// Exists so the HTML table and its CSV download come from the same [`Table`] value and
/// cannot disagree.
pub struct TableHtml<'a> {
    /// The `id` of the table (an anchor).
    pub id: &'a str,
    /// The caption.
    pub caption: &'a str,
    /// Link to the CSV download next to the page, relative to the page.
    pub csv: Option<&'a str>,
    /// The column shown as the row header (`<th scope="row">`).
    pub row_header: Option<usize>,
    /// Rows shown (the CSV has all); `None` for all.
    pub limit: Option<usize>,
    /// A link for a cell: `(column, row) → href` relative to the page.
    pub link: Option<CellLink<'a>>,
}

impl<'a> TableHtml<'a> {
    /// A table with an id, a caption and a CSV link; the first column is the row header.
    pub fn new(id: &'a str, caption: &'a str, csv: Option<&'a str>) -> TableHtml<'a> {
        TableHtml {
            id,
            caption,
            csv,
            row_header: Some(0),
            limit: None,
            link: None,
        }
    }

    /// The table as HTML (wrapped so a wide table scrolls instead of the page).
    pub fn render(&self, t: &Table) -> String {
        let mut o = String::new();
        let _ = write!(
            o,
            "<div class=\"table-wrap\">\n<table id=\"{}\">\n<caption>{}",
            esc(self.id),
            esc(self.caption)
        );
        let shown = self.limit.unwrap_or(usize::MAX).min(t.rows.len());
        if shown < t.rows.len() {
            let _ = write!(
                o,
                " <span class=\"note\">(the first {} of {} rows)</span>",
                thousands(shown as i64),
                thousands(t.rows.len() as i64)
            );
        }
        if let Some(csv) = self.csv {
            let _ = write!(
                o,
                " <a class=\"csv\" href=\"{}\" download>Download as CSV</a>",
                esc(csv)
            );
        }
        o.push_str("</caption>\n<thead><tr>");
        for c in &t.columns {
            let class = if c.kind == Kind::Text {
                ""
            } else {
                " class=\"num\""
            };
            let _ = write!(o, "<th scope=\"col\"{class}>{}</th>", esc(&c.title));
        }
        o.push_str("</tr></thead>\n<tbody>\n");
        for row in t.rows.iter().take(shown) {
            o.push_str("<tr>");
            for (i, (cell, col)) in row.iter().zip(&t.columns).enumerate() {
                let text = cell_text(col.kind, cell);
                let mut class = Vec::new();
                if col.kind != Kind::Text {
                    class.push("num");
                }
                if let (Kind::Diff, Cell::Int(n)) = (col.kind, cell) {
                    if *n > 0 {
                        class.push("up");
                    } else if *n < 0 {
                        class.push("down");
                    }
                }
                let verdict_class;
                if col.name.ends_with("verdict") {
                    if let Cell::Text(v) = cell {
                        verdict_class = format!("verdict-{}", css_ident(v));
                        class.push(&verdict_class);
                    }
                }
                let class = if class.is_empty() {
                    String::new()
                } else {
                    format!(" class=\"{}\"", class.join(" "))
                };
                let inner = match self.link.and_then(|f| f(i, row)) {
                    Some(href) => format!("<a href=\"{}\">{}</a>", esc(&href), esc(&text)),
                    None => esc(&text),
                };
                if self.row_header == Some(i) {
                    let _ = write!(o, "<th scope=\"row\"{class}>{inner}</th>");
                } else {
                    let _ = write!(o, "<td{class}>{inner}</td>");
                }
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</tbody>\n</table>\n</div>\n");
        o
    }
}

/// A cell for people: thousands separators, signed differences, percentages, `-` for none.
pub fn cell_text(kind: Kind, c: &Cell) -> String {
    match c {
        Cell::Text(s) => s.clone(),
        Cell::Int(n) if kind == Kind::Diff => signed(*n),
        Cell::Int(n) => thousands(*n),
        Cell::Share(f) => percent(*f),
        Cell::Null => "-".into(),
    }
}

/// A share as a percentage with one decimal (`41.7%`).
pub fn percent(f: f64) -> String {
    format!("{:.1}%", f * 100.0)
}

/// Only `[a-z0-9_-]` of `s`: safe inside a class name.
fn css_ident(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_a_peer_can_send() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("a\u{0}b\u{1b}[0m"), "a\u{FFFD}b\u{FFFD}[0m");
        assert_eq!(esc("mx.example"), "mx.example");
    }

    #[test]
    fn page_frame_is_accessible_and_script_free() {
        let p = Page {
            title: "T <i>",
            subtitle: "2026-11",
            path: "providers/x.html",
            footer: "f",
        };
        let doc = p.render("<p>body</p>\n");
        assert!(doc.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(doc.contains("<h1>T &lt;i&gt;</h1>"));
        assert!(doc.contains("href=\"../style.css\""));
        assert!(doc.contains("href=\"../ranking.html\""));
        assert!(doc.contains("default-src 'none'"));
        assert!(!doc.contains("<script"));
        let idx = Page {
            path: "ranking.html",
            ..p
        }
        .render("");
        assert!(idx.contains("href=\"ranking.html\" aria-current=\"page\""));
    }

    #[test]
    fn table_has_caption_scopes_numbers_and_escaped_cells() {
        let mut t = Table::new(&[
            ("provider", "provider", Kind::Text),
            ("dane", "DANE", Kind::Int),
            ("diff", "change", Kind::Diff),
            ("share", "share", Kind::Share),
            ("verdict", "verdict", Kind::Text),
        ]);
        t.push(vec![
            "<b>evil</b>.example".into(),
            Cell::Int(1234567),
            Cell::Int(-5),
            Cell::Share(0.4167),
            "dane_valid".into(),
        ]);
        t.push(vec![
            "b".into(),
            Cell::Int(2),
            Cell::Int(4),
            Cell::Null,
            "x\"onmouseover=y".into(),
        ]);
        let link = |col: usize, row: &[Cell]| match (col, &row[0]) {
            (0, Cell::Text(s)) if s == "b" => Some("p/b\".html".to_string()),
            _ => None,
        };
        let mut h = TableHtml::new("rank", "Providers & more", Some("rank.csv"));
        h.link = Some(&link);
        h.limit = Some(1);
        let html = h.render(&t);
        assert!(html.contains("<caption>Providers &amp; more"), "{html}");
        assert!(html.contains("(the first 1 of 2 rows)"));
        assert!(html.contains("<a class=\"csv\" href=\"rank.csv\" download>"));
        assert!(html.contains("<th scope=\"col\" class=\"num\">DANE</th>"));
        assert!(html.contains("<th scope=\"row\">&lt;b&gt;evil&lt;/b&gt;.example</th>"));
        assert!(html.contains("<td class=\"num\">1,234,567</td>"));
        assert!(html.contains("<td class=\"num down\">-5</td>"));
        assert!(html.contains("<td class=\"num\">41.7%</td>"));
        assert!(html.contains("class=\"verdict-dane_valid\""));
        assert!(!html.contains("<b>"));
        h.limit = None;
        let html = h.render(&t);
        assert!(html.contains("<a href=\"p/b&quot;.html\">b</a>"), "{html}");
        assert!(html.contains("class=\"verdict-xonmouseovery\""), "{html}");
        assert!(html.contains("<td class=\"num up\">+4</td>"));
    }
}
