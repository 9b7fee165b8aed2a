//! A small JSON writer: the observer's answers are built here, field by field.
//!
//! Invariants: every string goes through [`Json::str`], which escapes quotes, backslashes
//! and control characters (and `<`, so that a value can never close a `<script>` element),
//! so the output is valid JSON whatever the names and reasons hold; numbers are integers or
//! finite floats.

use std::fmt::Write;

/// A JSON document being written. Objects and arrays are opened and closed explicitly;
/// commas are placed by the writer.
#[derive(Default)]
pub(crate) struct Json {
    out: String,
    /// Per open container: whether it already has an element.
    stack: Vec<bool>,
    /// A key has just been written: the next value needs no comma.
    after_key: bool,
}

impl Json {
    pub(crate) fn new() -> Json {
        Json::default()
    }

    fn sep(&mut self) {
        if self.after_key {
            self.after_key = false;
            return;
        }
        if let Some(has) = self.stack.last_mut() {
            if *has {
                self.out.push(',');
            }
            *has = true;
        }
    }

    pub(crate) fn obj(&mut self) -> &mut Self {
        self.sep();
        self.out.push('{');
        self.stack.push(false);
        self
    }

    pub(crate) fn end_obj(&mut self) -> &mut Self {
        self.stack.pop();
        self.out.push('}');
        self
    }

    pub(crate) fn arr(&mut self) -> &mut Self {
        self.sep();
        self.out.push('[');
        self.stack.push(false);
        self
    }

    pub(crate) fn end_arr(&mut self) -> &mut Self {
        self.stack.pop();
        self.out.push(']');
        self
    }

    /// An object key; the next call writes its value.
    pub(crate) fn key(&mut self, k: &str) -> &mut Self {
        self.sep();
        escape(&mut self.out, k);
        self.out.push(':');
        self.after_key = true;
        self
    }

    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.sep();
        escape(&mut self.out, s);
        self
    }

    pub(crate) fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.str(s),
            None => self.null(),
        }
    }

    pub(crate) fn num(&mut self, n: impl Into<u64>) -> &mut Self {
        self.sep();
        let _ = write!(self.out, "{}", n.into());
        self
    }

    pub(crate) fn opt_num(&mut self, n: Option<u64>) -> &mut Self {
        match n {
            Some(n) => self.num(n),
            None => self.null(),
        }
    }

    pub(crate) fn bool(&mut self, b: bool) -> &mut Self {
        self.sep();
        self.out.push_str(if b { "true" } else { "false" });
        self
    }

    pub(crate) fn null(&mut self) -> &mut Self {
        self.sep();
        self.out.push_str("null");
        self
    }

    /// `"key": "value"` in one call.
    pub(crate) fn field_str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k).str(v)
    }

    /// `"key": number` in one call.
    pub(crate) fn field_num(&mut self, k: &str, v: impl Into<u64>) -> &mut Self {
        self.key(k).num(v)
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

fn escape(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_containers_get_commas_in_the_right_places() {
        let mut j = Json::new();
        j.obj()
            .field_num("a", 1u64)
            .key("b")
            .arr()
            .num(2u64)
            .str("x")
            .obj()
            .end_obj()
            .end_arr();
        j.key("c").null().end_obj();
        assert_eq!(j.finish(), r#"{"a":1,"b":[2,"x",{}],"c":null}"#);
    }

    #[test]
    fn strings_are_escaped() {
        let mut j = Json::new();
        j.str("a\"b\\c\nd\u{1}</script>é");
        assert_eq!(j.finish(), r#""a\"b\\c\nd\u0001\u003c/script>é""#);
    }
}
