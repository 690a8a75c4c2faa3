//! A minimal document model, rendered once as Markdown and once as a
//! self-contained HTML page, so both report files say the same thing.

/// One block of a report.
#[derive(Debug, Clone)]
pub enum Block {
    /// A section heading (level 2; the title is level 1).
    Heading(String),
    /// A paragraph (inline Markdown code spans kept as `code` in HTML).
    Paragraph(String),
    /// A table: header cells and rows of cells.
    Table {
        /// Column headers.
        header: Vec<String>,
        /// Rows.
        rows: Vec<Vec<String>>,
    },
    /// An inline SVG figure (HTML only; Markdown gets its caption).
    Figure {
        /// What it shows.
        caption: String,
        /// The SVG document.
        svg: String,
    },
}

/// A titled list of blocks.
#[derive(Debug, Clone, Default)]
pub struct Document {
    /// Title.
    pub title: String,
    /// Content.
    pub blocks: Vec<Block>,
}

impl Document {
    /// A new, empty document.
    pub fn new(title: impl Into<String>) -> Self {
        Document {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    /// Appends a heading.
    pub fn heading(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Heading(text.into()));
    }

    /// Appends a paragraph.
    pub fn paragraph(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Paragraph(text.into()));
    }

    /// Appends a table.
    pub fn table(&mut self, header: &[&str], rows: Vec<Vec<String>>) {
        self.blocks.push(Block::Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows,
        });
    }

    /// Appends a figure.
    pub fn figure(&mut self, caption: impl Into<String>, svg: String) {
        self.blocks.push(Block::Figure {
            caption: caption.into(),
            svg,
        });
    }

    /// The document as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut md = format!("# {}\n", self.title);
        for block in &self.blocks {
            md.push('\n');
            match block {
                Block::Heading(h) => md.push_str(&format!("## {h}\n")),
                Block::Paragraph(p) => md.push_str(&format!("{p}\n")),
                Block::Table { header, rows } => {
                    let cell = |c: &String| c.replace('|', "\\|").replace('\n', " ");
                    let line = |cells: &[String]| {
                        format!(
                            "| {} |\n",
                            cells.iter().map(cell).collect::<Vec<_>>().join(" | ")
                        )
                    };
                    md.push_str(&line(header));
                    md.push_str(&format!("|{}\n", "---|".repeat(header.len())));
                    for r in rows {
                        md.push_str(&line(r));
                    }
                }
                Block::Figure { caption, .. } => {
                    md.push_str(&format!("*Figure (in report.html): {caption}.*\n"))
                }
            }
        }
        md
    }

    /// The document as one self-contained HTML page (no external assets).
    pub fn to_html(&self) -> String {
        let mut html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
            escape(&self.title),
            escape(&self.title)
        );
        for block in &self.blocks {
            match block {
                Block::Heading(h) => html.push_str(&format!("<h2>{}</h2>\n", escape(h))),
                Block::Paragraph(p) => html.push_str(&format!("<p>{}</p>\n", inline(p))),
                Block::Table { header, rows } => {
                    html.push_str("<table><thead><tr>");
                    for h in header {
                        html.push_str(&format!("<th>{}</th>", escape(h)));
                    }
                    html.push_str("</tr></thead><tbody>\n");
                    for r in rows {
                        html.push_str("<tr>");
                        for c in r {
                            html.push_str(&format!("<td>{}</td>", inline(c)));
                        }
                        html.push_str("</tr>\n");
                    }
                    html.push_str("</tbody></table>\n");
                }
                Block::Figure { caption, svg } => html.push_str(&format!(
                    "<figure>{svg}<figcaption>{}</figcaption></figure>\n",
                    escape(caption)
                )),
            }
        }
        html.push_str("</body></html>\n");
        html
    }
}

const STYLE: &str =
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}\
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}figure{display:inline-block;margin:0.5em}\
figcaption{font-size:0.85em;color:#555}code{background:#f3f3f3;padding:0 3px}";

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text and turns Markdown code spans (`x`) into `<code>`.
fn inline(text: &str) -> String {
    escape(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_renderings_carry_every_block_and_html_is_escaped() {
        let mut d = Document::new("Report <1>");
        d.heading("Metrics");
        d.paragraph("Scored `a<b.jsonl`.");
        d.table(
            &["name", "value"],
            vec![vec!["x|y".into(), "<script>".into()]],
        );
        d.figure("ROC", "<svg></svg>".into());
        let md = d.to_markdown();
        assert!(md.starts_with("# Report <1>\n"));
        assert!(md.contains("## Metrics"));
        assert!(md.contains("| name | value |\n|---|---|\n| x\\|y | <script> |"));
        assert!(md.contains("*Figure (in report.html): ROC.*"));
        let html = d.to_html();
        assert!(html.contains("<title>Report &lt;1&gt;</title>"));
        assert!(html.contains("<p>Scored <code>a&lt;b.jsonl</code>.</p>"));
        assert!(html.contains("<td>&lt;script&gt;</td>"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("<figure><svg></svg><figcaption>ROC</figcaption></figure>"));
    }
}
