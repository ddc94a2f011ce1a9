//! The end of the demo: a table for people, or one JSON object for scripts.

use std::io::{self, Write};

use super::acts::Sales;

/// Everything the demo found out.
pub(crate) struct Outcome {
    pub(crate) stock: u64,
    pub(crate) buyers: u32,
    /// The lock URL without its password.
    pub(crate) url: String,
    /// Where the stock was kept.
    pub(crate) store: String,
    pub(crate) without_lock: Sales,
    pub(crate) with_lock: Sales,
    /// Act 3: `None` when the backend cannot lose a hold (it did not run).
    pub(crate) stale_write_rejected: Option<bool>,
}

impl Outcome {
    /// Act 2 sold exactly the stock, each item once, and act 3 (if run) was fenced.
    pub(crate) fn correct(&self) -> bool {
        self.with_lock.exact(self.stock) && self.stale_write_rejected != Some(false)
    }

    /// The JSON form (`--json`).
    pub(crate) fn json(&self) -> serde_json::Value {
        let act = |s: &Sales| serde_json::json!({"sold": s.sold(), "sold_twice": s.sold_twice()});
        serde_json::json!({
            "stock": self.stock,
            "buyers": self.buyers,
            "without_lock": act(&self.without_lock),
            "with_lock": act(&self.with_lock),
            "stale_write_rejected": self.stale_write_rejected,
        })
    }

    /// Writes the report; a closed pipe (`| head`) is the caller's to treat as quiet.
    pub(crate) fn write(&self, out: &mut impl Write, json: bool) -> io::Result<()> {
        if json {
            writeln!(out, "{}", self.json())?;
            return out.flush();
        }
        let items = if self.stock == 1 { "item" } else { "items" };
        writeln!(
            out,
            "flash sale: {} {items}, {} buyer processes, lock {}, stock in {}",
            self.stock, self.buyers, self.url, self.store
        )?;
        writeln!(out, "{:<34}{:>6}{:>12}  verdict", "", "sold", "sold twice")?;
        let without = &self.without_lock;
        let verdict = if without.sold() > self.stock || without.sold_twice() > 0 {
            format!("OVERSOLD: {} sold, {} in stock", without.sold(), self.stock)
        } else {
            "no oversell this time (the race is timing; try more --buyers)".to_string()
        };
        row(out, "act 1  without a lock", without, &verdict)?;
        let with = &self.with_lock;
        let verdict = if with.exact(self.stock) {
            "exact: every item sold once".to_string()
        } else {
            format!("WRONG: {} sold, {} in stock", with.sold(), self.stock)
        };
        row(out, "act 2  with the lock", with, &verdict)?;
        let verdict = match self.stale_write_rejected {
            Some(true) => "late write REJECTED by the fence; the new holder's value stayed",
            Some(false) => "WRONG: the late write got through",
            None => "not run: this backend cannot lose a hold while its holder lives",
        };
        writeln!(
            out,
            "{:<34}{:>6}{:>12}  {verdict}",
            "act 3  holder paused past its hold", "-", "-"
        )?;
        if self.stock <= 10 {
            for (item, buyers) in &with.items {
                let buyers: Vec<String> = buyers.iter().map(|b| format!("buyer {b}")).collect();
                writeln!(
                    out,
                    "with the lock, item {item} went to {}",
                    buyers.join(", ")
                )?;
            }
        }
        out.flush()
    }
}

fn row(out: &mut impl Write, act: &str, sales: &Sales, verdict: &str) -> io::Result<()> {
    writeln!(
        out,
        "{act:<34}{:>6}{:>12}  {verdict}",
        sales.sold(),
        sales.sold_twice()
    )
}
