//! Text generators for the tree: source code, application logs, JSON lines.

use crate::rng::Rng;

const KEYWORDS: &[&str] = &[
    "const",
    "let",
    "return",
    "if",
    "else",
    "for",
    "while",
    "async",
    "await",
    "function",
    "export",
    "import",
    "from",
    "class",
    "new",
    "this",
    "null",
    "true",
    "false",
    "private",
    "public",
    "static",
    "interface",
    "type",
    "extends",
    "implements",
    "throw",
    "try",
    "catch",
];
const SYLLABLES: &[&str] = &[
    "user", "order", "vehicle", "dealer", "invoice", "part", "stock", "price", "tax", "repair",
    "service", "account", "customer", "contract", "lease", "payment", "report", "config", "cache",
    "handler", "request", "response", "query", "item", "list", "map", "id", "date", "total",
    "count", "status", "state", "error", "result", "value", "key", "name", "code", "line", "unit",
];
const LEVELS: &[&str] = &[
    "INFO ", "INFO ", "INFO ", "DEBUG", "DEBUG", "WARN ", "ERROR",
];

/// Text generators over one identifier vocabulary.
pub struct Gen {
    pub idents: Vec<String>,
}

impl Gen {
    /// A vocabulary of 2000 identifiers of one to three syllables.
    pub fn new(rng: &mut Rng) -> Self {
        let idents: Vec<String> = (0..2000)
            .map(|i| {
                let parts = 1 + i % 3;
                let mut s = String::new();
                for p in 0..parts {
                    let syl = *rng.pick(SYLLABLES);
                    if p == 0 {
                        s.push_str(syl);
                    } else {
                        s.push_str(&syl[..1].to_uppercase());
                        s.push_str(&syl[1..]);
                    }
                }
                s
            })
            .collect();
        Self { idents }
    }
    fn ident(&self, rng: &mut Rng) -> &str {
        &self.idents[rng.skewed(self.idents.len())]
    }

    /// Code-like lines: keywords, identifiers, calls, literals, with nesting indentation.
    pub fn source(&self, rng: &mut Rng, buf: &mut Vec<u8>, len: usize) {
        let mut depth = 0usize;
        while buf.len() < len {
            let start = buf.len();
            buf.resize(start + depth * 2, b' ');
            let line = match rng.below(12) {
                0 if depth < 5 => {
                    depth += 1;
                    format!(
                        "{} {}({}: {}) {{",
                        rng.pick(KEYWORDS),
                        self.ident(rng),
                        self.ident(rng),
                        self.ident(rng)
                    )
                }
                1 | 2 if depth > 0 => {
                    depth -= 1;
                    buf.truncate(start + depth * 2);
                    "}".to_string()
                }
                3 => format!(
                    "// {} {} {} {}",
                    self.ident(rng),
                    rng.pick(KEYWORDS),
                    self.ident(rng),
                    self.ident(rng)
                ),
                4 => format!(
                    "{} {} = {};",
                    rng.pick(KEYWORDS),
                    self.ident(rng),
                    rng.below(100_000)
                ),
                5 => format!(
                    "if ({}.{} > {}) {{ return {}; }}",
                    self.ident(rng),
                    self.ident(rng),
                    rng.below(1000),
                    self.ident(rng)
                ),
                6 => format!(
                    "import {{ {} }} from \"./{}\";",
                    self.ident(rng),
                    self.ident(rng)
                ),
                7 => format!(
                    "this.{} = \"{}-{}\";",
                    self.ident(rng),
                    self.ident(rng),
                    rng.below(10_000)
                ),
                _ => format!(
                    "const {} = await {}.{}({}, {});",
                    self.ident(rng),
                    self.ident(rng),
                    self.ident(rng),
                    self.ident(rng),
                    rng.below(1000)
                ),
            };
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
        }
        buf.truncate(len);
    }

    /// Application log lines: advancing timestamps, levels, request ids, key=value fields.
    pub fn log(&self, rng: &mut Rng, buf: &mut Vec<u8>, len: usize, file_no: u64) {
        let mut ms: u64 = 1_700_000_000_000 + file_no * 86_400_000;
        while buf.len() < len {
            ms += rng.below(400);
            let (secs, milli) = (ms / 1000, ms % 1000);
            let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
            let day = 1 + (secs / 86_400) % 28;
            let line = format!(
                "2024-05-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z {} [worker-{}] {}.{}: {} {} req=",
                rng.pick(LEVELS),
                rng.below(8),
                self.ident(rng),
                self.ident(rng),
                self.ident(rng),
                self.ident(rng)
            );
            buf.extend_from_slice(line.as_bytes());
            rng.hex(buf, 8);
            let tail = format!(
                " user={} {}={} latency_ms={}\n",
                rng.below(5000),
                self.ident(rng),
                rng.below(100_000),
                rng.below(2000)
            );
            buf.extend_from_slice(tail.as_bytes());
        }
        buf.truncate(len);
    }

    /// JSON-lines records as an export or API dump would hold them.
    pub fn json(&self, rng: &mut Rng, buf: &mut Vec<u8>, len: usize) {
        let mut id = rng.below(1_000_000);
        while buf.len() < len {
            id += 1 + rng.below(3);
            let rec = format!(
                "{{\"id\":{id},\"{}\":\"{} {}\",\"{}\":{}.{:02},\"status\":\"{}\",\"tags\":[\"{}\",\"{}\"],\"ref\":\"",
                self.ident(rng),
                self.ident(rng),
                self.ident(rng),
                self.ident(rng),
                rng.below(10_000),
                rng.below(100),
                rng.pick(&["open", "closed", "pending", "paid"]),
                self.ident(rng),
                self.ident(rng)
            );
            buf.extend_from_slice(rec.as_bytes());
            rng.hex(buf, 12);
            buf.extend_from_slice(b"\"}\n");
        }
        buf.truncate(len);
    }
}
