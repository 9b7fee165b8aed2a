//! Output: one JSON line per measurement, then a summary table of medians.

use crate::stats::median;
use crate::workloads::{Figures, Workload};
use std::fmt::Write as _;

/// Which implementation a measurement is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Impl {
    Arbor,
    Raw,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Arbor => "arbor",
            Impl::Raw => "raw",
        }
    }
}

/// One run of one workload on one implementation.
#[derive(Debug)]
pub(crate) struct Measurement {
    pub(crate) workload: &'static str,
    pub(crate) imp: Impl,
    pub(crate) run: usize,
    pub(crate) size: &'static str,
    pub(crate) figures: Figures,
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number (`null` for NaN and infinities, which JSON lacks).
fn json_num(x: f64) -> String {
    if x.is_finite() {
        // Rust prints f64 without an exponent, always a valid JSON number.
        format!("{x}")
    } else {
        "null".to_string()
    }
}

/// The JSON line for a measurement.
pub(crate) fn json_line(m: &Measurement) -> String {
    let mut s = format!(
        "{{\"workload\":{},\"impl\":{},\"run\":{},\"size\":{},\"figures\":{{",
        json_str(m.workload),
        json_str(m.imp.name()),
        m.run,
        json_str(m.size)
    );
    for (i, (k, v)) in m.figures.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{}:{}", json_str(k), json_num(*v));
    }
    s.push_str("}}");
    s
}

/// Prints a measurement's JSON line.
pub(crate) fn print_line(m: &Measurement) {
    println!("{}", json_line(m));
}

/// Prints the JSON line saying a workload has no raw baseline.
pub(crate) fn print_na(w: &Workload) {
    println!(
        "{{\"workload\":{},\"impl\":\"raw\",\"run\":null,\"figures\":null,\"na\":{}}}",
        json_str(w.name),
        json_str(w.na_reason)
    );
}

/// `x` with three significant digits and an SI suffix (k, M, G).
pub(crate) fn human(x: f64) -> String {
    if !x.is_finite() {
        return "-".to_string();
    }
    let (v, suffix) = match x.abs() {
        a if a >= 1e9 => (x / 1e9, " G"),
        a if a >= 1e6 => (x / 1e6, " M"),
        a if a >= 1e4 => (x / 1e3, " k"),
        _ => (x, ""),
    };
    let digits = match v.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        _ => 2,
    };
    format!("{v:.digits$}{suffix}")
}

fn medians(ms: &[Measurement], imp: Impl, key: &str) -> Option<f64> {
    let xs: Vec<f64> = ms
        .iter()
        .filter(|m| m.imp == imp)
        .filter_map(|m| m.figures.iter().find(|(k, _)| *k == key).map(|(_, v)| *v))
        .collect();
    (!xs.is_empty()).then(|| median(&xs))
}

/// The summary table, as text.
pub(crate) fn summary(results: &[(&Workload, Vec<Measurement>)], runs: usize) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "workload".into(),
        "figure".into(),
        "better".into(),
        "arbor".into(),
        "raw".into(),
        "arbor/raw".into(),
    ]];
    for (w, ms) in results {
        for f in w.summary {
            let arbor = medians(ms, Impl::Arbor, f.key);
            let raw = medians(ms, Impl::Raw, f.key);
            let ratio = match (arbor, raw) {
                (Some(a), Some(r)) if r != 0.0 && a.is_finite() && r.is_finite() => format!("{:.2}", a / r),
                _ => "n/a".into(),
            };
            rows.push([
                w.name.into(),
                format!("{} ({})", f.key, f.unit),
                if f.higher_is_better { "higher" } else { "lower" }.into(),
                arbor.map_or("-".into(), human),
                raw.map_or("n/a".into(), human),
                ratio,
            ]);
        }
    }
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = format!("\nsummary: medians of {runs} run(s); ratio = arbor / raw\n");
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}  {:>w5$}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
            w5 = widths[5]
        );
        if i == 0 {
            let total: usize = widths.iter().sum::<usize>() + 10;
            let _ = writeln!(out, "{}", "-".repeat(total));
        }
    }
    out
}

/// Prints the summary table.
pub(crate) fn print_summary(results: &[(&Workload, Vec<Measurement>)], runs: usize) {
    print!("{}", summary(results, runs));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_and_numbers() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u0001""#);
        assert_eq!(json_num(1.5), "1.5");
        assert_eq!(json_num(1e21), "1000000000000000000000");
        assert_eq!(json_num(f64::NAN), "null");
        let m = Measurement {
            workload: "w",
            imp: Impl::Raw,
            run: 2,
            size: "tiny",
            figures: vec![("a", 1.0), ("b", 0.25)],
        };
        assert_eq!(
            json_line(&m),
            r#"{"workload":"w","impl":"raw","run":2,"size":"tiny","figures":{"a":1,"b":0.25}}"#
        );
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human(12_345_678.0), "12.3 M");
        assert_eq!(human(512.0), "512");
        assert_eq!(human(0.5), "0.50");
        assert_eq!(human(15_000.0), "15.0 k");
    }
}
