//! Event format text (`events/<system>/<event>/format`, stored in the `.dat` file) and the small
//! C-expression evaluator needed to read the `__print_flags` table of `gfp_flags` and the
//! `pageblock_order` constant out of a `print fmt`.

/// One `field:` line of a format file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Field name (array brackets removed: `buf[]` → `buf`).
    pub name: String,
    /// Byte offset in the record.
    pub offset: usize,
    /// Byte size (0 for a flexible array such as ftrace `print`'s `buf[]`).
    pub size: usize,
    /// `signed:1`.
    pub signed: bool,
}

/// A parsed event format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFormat {
    /// The system (`kmem`, `ftrace`).
    pub system: String,
    /// Event name (`mm_page_alloc`).
    pub name: String,
    /// Event id (the record's `common_type`).
    pub id: u16,
    /// Fields, common ones included.
    pub fields: Vec<Field>,
    /// The `print fmt:` text (format string and arguments).
    pub print_fmt: String,
}

impl EventFormat {
    /// A field by name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Parse one format file. Errors say what was expected.
pub fn parse_format(system: &str, text: &str) -> Result<EventFormat, String> {
    let mut f = EventFormat {
        system: system.to_string(),
        ..EventFormat::default()
    };
    let mut have_id = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(n) = t.strip_prefix("name:") {
            f.name = n.trim().to_string();
        } else if let Some(n) = t.strip_prefix("ID:") {
            let v: u32 = n.trim().parse().map_err(|_| {
                format!(
                    "format line {}: expected `ID: <number>`, found {t:?}",
                    i + 1
                )
            })?;
            f.id = u16::try_from(v)
                .map_err(|_| format!("format line {}: event id {v} does not fit 16 bits", i + 1))?;
            have_id = true;
        } else if let Some(rest) = t.strip_prefix("field:") {
            f.fields.push(parse_field(rest).ok_or_else(|| {
                format!(
                    "format line {}: expected `field:<decl>; offset:N; size:N;`, found {t:?}",
                    i + 1
                )
            })?);
        } else if let Some(p) = t.strip_prefix("print fmt:") {
            f.print_fmt = p.trim().to_string();
        }
    }
    if f.name.is_empty() || !have_id {
        return Err("format text without `name:` and `ID:` lines".to_string());
    }
    Ok(f)
}

fn parse_field(rest: &str) -> Option<Field> {
    let mut parts = rest.split(';');
    let decl = parts.next()?.trim();
    // the name is the last identifier of the declaration, before any array brackets
    let decl = decl.split('[').next()?.trim_end();
    let name: String = decl
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if name.is_empty() {
        return None;
    }
    let (mut offset, mut size, mut signed) = (None, None, false);
    for p in parts {
        let p = p.trim();
        if let Some(v) = p.strip_prefix("offset:") {
            offset = v.trim().parse().ok();
        } else if let Some(v) = p.strip_prefix("size:") {
            size = v.trim().parse().ok();
        } else if let Some(v) = p.strip_prefix("signed:") {
            signed = v.trim() == "1";
        }
    }
    Some(Field {
        name,
        offset: offset?,
        size: size?,
        signed,
    })
}

/// `(value, name)` pairs of the first `__print_flags(...)` in a print fmt, in table order.
pub fn print_flags_table(print_fmt: &str) -> Option<Vec<(u64, String)>> {
    let start = print_fmt.find("__print_flags(")? + "__print_flags(".len();
    let b = print_fmt.as_bytes();
    let mut out = Vec::new();
    let mut i = start;
    let mut depth = 0i32;
    while i < b.len() {
        match b[i] {
            b'"' => {
                // skip a string outside the braces (the delimiter)
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += 1;
                }
            }
            b'(' => depth += 1,
            b')' => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            b'{' => {
                let close = i + print_fmt[i..].find('}')?;
                let inner = &print_fmt[i + 1..close];
                let q1 = inner.rfind('"')?;
                let q0 = inner[..q1].rfind('"')?;
                let name = inner[q0 + 1..q1].to_string();
                let expr = inner[..q0].trim_end().strip_suffix(',')?;
                out.push((eval(expr).ok()? as u64, name));
                i = close;
            }
            _ => {}
        }
        i += 1;
    }
    (!out.is_empty()).then_some(out)
}

/// Render `val` like libtraceevent's `__print_flags` with delimiter `|` (`none` for 0, unknown
/// bits as `0x..`).
pub fn render_flags(table: &[(u64, String)], mut val: u64) -> String {
    if val == 0 {
        return "none".to_string();
    }
    let mut s = String::new();
    for (fv, name) in table {
        if *fv != 0 && val & fv == *fv {
            if !s.is_empty() {
                s.push('|');
            }
            s.push_str(name);
            val &= !fv;
        }
    }
    if val != 0 {
        if !s.is_empty() {
            s.push('|');
        }
        s.push_str(&format!("{val:#x}"));
    }
    s
}

/// The top-level comma-separated arguments after the format string of a print fmt.
pub fn print_args(print_fmt: &str) -> Vec<&str> {
    let b = print_fmt.as_bytes();
    let mut i = 0;
    // skip the quoted format string
    if b.first() == Some(&b'"') {
        i = 1;
        while i < b.len() && b[i] != b'"' {
            if b[i] == b'\\' {
                i += 1;
            }
            i += 1;
        }
        i += 1;
    }
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = None;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_str = false;
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'(' | b'{' | b'[' => depth += 1,
                b')' | b'}' | b']' => depth -= 1,
                b',' if depth == 0 => {
                    if let Some(s) = start {
                        out.push(print_fmt[s..i].trim());
                    }
                    start = Some(i + 1);
                }
                _ => {}
            }
        }
        i += 1;
    }
    if let Some(s) = start {
        out.push(print_fmt[s..].trim());
    }
    out
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(i128),
    Ident(String),
    Op(&'static str),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    const OPS: [&str; 26] = [
        "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "->", "~", "!", "-", "+", "*", "/", "%",
        "&", "|", "^", "<", ">", "?", ":", "(", ")", ".",
    ];
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let st = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            let t = s[st..i].trim_end_matches(['u', 'U', 'l', 'L']);
            let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                i128::from_str_radix(h, 16)
            } else {
                t.parse::<i128>()
            }
            .map_err(|_| format!("bad number {:?}", &s[st..i]))?;
            out.push(Tok::Num(v));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let st = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(s[st..i].to_string()));
        } else {
            let op = OPS
                .iter()
                .find(|o| s[i..].starts_with(**o))
                .ok_or_else(|| format!("unexpected character {:?}", c as char))?;
            out.push(Tok::Op(op));
            i += op.len();
        }
    }
    Ok(out)
}

const TYPE_WORDS: [&str; 16] = [
    "unsigned", "signed", "long", "int", "short", "char", "gfp_t", "u8", "u16", "u32", "u64", "s8",
    "s16", "s32", "s64", "const",
];

struct P {
    t: Vec<Tok>,
    i: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }
    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// `( type words [*] )` at the cursor: a cast.
    fn cast_len(&self) -> Option<usize> {
        if !matches!(self.t.get(self.i), Some(Tok::Op("("))) {
            return None;
        }
        let mut j = self.i + 1;
        let mut n = 0;
        loop {
            match self.t.get(j)? {
                Tok::Ident(w) if TYPE_WORDS.contains(&w.as_str()) || w.ends_with("_t") => n += 1,
                Tok::Op("*") => {}
                Tok::Op(")") if n > 0 => return Some(j + 1 - self.i),
                _ => return None,
            }
            j += 1;
        }
    }
    fn unary(&mut self, depth: u32) -> Result<i128, String> {
        if depth > 200 {
            return Err("expression nested too deeply".into());
        }
        if let Some(n) = self.cast_len() {
            self.i += n;
            return self.unary(depth + 1);
        }
        match self.t.get(self.i).cloned() {
            Some(Tok::Op("~")) => {
                self.i += 1;
                Ok(!(self.unary(depth + 1)? as u64) as i128)
            }
            Some(Tok::Op("!")) => {
                self.i += 1;
                Ok((self.unary(depth + 1)? == 0) as i128)
            }
            Some(Tok::Op("-")) => {
                self.i += 1;
                Ok(self.unary(depth + 1)?.wrapping_neg())
            }
            Some(Tok::Op("(")) => {
                self.i += 1;
                let v = self.expr(0, depth + 1)?;
                if !self.eat(")") {
                    return Err("expected `)`".into());
                }
                Ok(v)
            }
            Some(Tok::Num(v)) => {
                self.i += 1;
                Ok(v)
            }
            Some(t) => Err(format!("cannot evaluate {t:?}")),
            None => Err("unexpected end of expression".into()),
        }
    }
    fn expr(&mut self, min_prec: u8, depth: u32) -> Result<i128, String> {
        if depth > 200 {
            return Err("expression nested too deeply".into());
        }
        let mut lhs = self.unary(depth + 1)?;
        while let Some(Tok::Op(op)) = self.peek() {
            let op = *op;
            let prec = match op {
                "?" => 1,
                "||" => 2,
                "&&" => 3,
                "|" => 4,
                "^" => 5,
                "&" => 6,
                "==" | "!=" => 7,
                "<" | ">" | "<=" | ">=" => 8,
                "<<" | ">>" => 9,
                "+" | "-" => 10,
                "*" | "/" | "%" => 11,
                _ => break,
            };
            if prec < min_prec {
                break;
            }
            self.i += 1;
            if op == "?" {
                let a = self.expr(0, depth + 1)?;
                if !self.eat(":") {
                    return Err("expected `:`".into());
                }
                let b = self.expr(1, depth + 1)?;
                lhs = if lhs != 0 { a } else { b };
                continue;
            }
            let rhs = self.expr(prec + 1, depth + 1)?;
            let m = |v: i128| v as u64;
            lhs = match op {
                "||" => (lhs != 0 || rhs != 0) as i128,
                "&&" => (lhs != 0 && rhs != 0) as i128,
                "|" => (m(lhs) | m(rhs)) as i128,
                "^" => (m(lhs) ^ m(rhs)) as i128,
                "&" => (m(lhs) & m(rhs)) as i128,
                "==" => (lhs == rhs) as i128,
                "!=" => (lhs != rhs) as i128,
                "<" => (lhs < rhs) as i128,
                ">" => (lhs > rhs) as i128,
                "<=" => (lhs <= rhs) as i128,
                ">=" => (lhs >= rhs) as i128,
                "<<" => {
                    if !(0..64).contains(&rhs) {
                        return Err(format!("shift by {rhs}"));
                    }
                    (m(lhs) << rhs) as i128
                }
                ">>" => {
                    if !(0..64).contains(&rhs) {
                        return Err(format!("shift by {rhs}"));
                    }
                    (m(lhs) >> rhs) as i128
                }
                "+" => lhs.wrapping_add(rhs),
                "-" => lhs.wrapping_sub(rhs),
                "*" => lhs.wrapping_mul(rhs),
                "/" | "%" => {
                    if rhs == 0 {
                        return Err("division by zero".into());
                    }
                    if op == "/" {
                        lhs / rhs
                    } else {
                        lhs % rhs
                    }
                }
                _ => unreachable!("operator table above"),
            };
        }
        Ok(lhs)
    }
}

/// Evaluate a constant C integer expression (numbers, casts, unary and binary operators,
/// `?:`). Identifiers other than type names in casts are an error.
pub fn eval(s: &str) -> Result<i128, String> {
    let t = tokenize(s)?;
    let mut p = P { t, i: 0 };
    let v = p.expr(0, 0)?;
    if p.i != p.t.len() {
        return Err(format!("trailing tokens in {s:?}"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_casts_and_shifts() {
        assert_eq!(eval("(( gfp_t)((((1UL))) << (10)))").unwrap(), 1024);
        assert_eq!(
            eval("(((unsigned int)((21 - 12))) < ((unsigned int)(10)) ? ((unsigned int)((21 - 12))) : ((unsigned int)(10)))").unwrap(),
            9
        );
        assert_eq!(eval("(~0x3UL) & 0xff").unwrap(), 0xfc);
        assert!(eval("REC->pfn").is_err());
        assert!(eval("1 <<").is_err());
        assert!(eval("(((((((((((((((((((((((1").is_err());
    }

    #[test]
    fn flags_render_like_libtraceevent() {
        let fmt = r#""x=%s", (REC->gfp_flags) ? __print_flags(REC->gfp_flags, "|", {( unsigned long)((1UL << 6) | (1UL << 7)), "GFP_KERNEL"}, {( unsigned long)(1UL << 6), "__GFP_IO"}, {( unsigned long)(1UL << 13), "__GFP_NOWARN"} ) : "none""#;
        let t = print_flags_table(fmt).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(render_flags(&t, 0xc0), "GFP_KERNEL");
        assert_eq!(
            render_flags(&t, 0xc0 | (1 << 13)),
            "GFP_KERNEL|__GFP_NOWARN"
        );
        assert_eq!(render_flags(&t, 0x40 | 1), "__GFP_IO|0x1");
        assert_eq!(render_flags(&t, 0), "none");
        assert_eq!(print_args(fmt).len(), 1);
    }
}
