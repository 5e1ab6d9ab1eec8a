//! Published cloud prices as data: `data/cloud-prices.json` at the repository root, loaded and
//! checked before anything is billed with it.
//!
//! Prices change, so every product and discount carries the page it came from and the date it
//! was read; a file that lacks them, names an unknown provider, or holds a negative price is
//! refused with the place to fix it, never billed with.

use crate::error::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Providers the bill knows how to read; a product of another is refused.
pub const KNOWN_PROVIDERS: [&str; 2] = ["aws", "gcp"];

/// How a product bills, which decides what part of a usage record it charges for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// Per request and per GB-second of each invocation (AWS Lambda).
    Function,
    /// Per vCPU and GB for each container's whole life (AWS Fargate).
    Container,
    /// Per instance (or per vCPU and GB) for each instance's whole life (EC2, GCE).
    Instance,
    /// Per request and per vCPU- and GiB-second while serving it (Cloud Run, request-billed).
    RequestContainer,
}

/// The unit a published price is quoted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    MillionRequests,
    GbSecond,
    GibSecond,
    VcpuSecond,
    VcpuHour,
    GbHour,
    InstanceHour,
}

/// One published price: so many US dollars per `unit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub unit: Unit,
    pub price_usd: f64,
}

/// How time is rounded before it is charged: up to a multiple of `granularity_s`, and never
/// less than `minimum_s` per instance (or per invocation, for functions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Billing {
    pub granularity_s: f64,
    pub minimum_s: f64,
    /// The rule in words, as the bill prints it.
    pub rule: String,
    /// Whether a function's cold start (its INIT phase) is billed with the request; absent
    /// where the price file records nothing about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitBilling>,
}

/// Whether a cold start is billed, since when, and where the provider says so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitBilling {
    pub billed: bool,
    /// The date the rule took effect.
    pub since: String,
    pub source: String,
}

/// The vCPUs and memory of a fixed instance type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Size {
    pub vcpu: f64,
    pub memory_gib: f64,
}

/// One product at its published prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub provider: String,
    pub product: String,
    pub model: Model,
    pub region: String,
    /// A fixed instance type's size; absent where the price is per vCPU and GB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    pub rates: Vec<Rate>,
    pub billing: Billing,
    /// Functions: the memory that buys one full vCPU (a CPU-bound function is sized to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_vcpu_memory_mb: Option<f64>,
    pub source: String,
    pub date_read: String,
}

/// What a discount is bought with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountKind {
    /// A commitment to use (reserved instances, Savings Plans).
    Commitment,
    /// Spare capacity that can be taken back (Spot): the figure is a ceiling, not a price.
    Spot,
}

/// A published "up to" discount off on-demand prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discount {
    pub id: String,
    pub provider: String,
    pub name: String,
    pub kind: DiscountKind,
    pub applies_to: Vec<Model>,
    /// The most it takes off (0.72 = up to 72% off).
    pub up_to_fraction: f64,
    pub note: String,
    pub source: String,
    pub date_read: String,
}

/// The whole price file, checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceBook {
    pub about: String,
    pub products: Vec<Product>,
    pub discounts: Vec<Discount>,
}

impl Product {
    /// The price per `unit`, or an error naming the product and the missing unit.
    pub fn rate(&self, unit: Unit) -> Result<f64> {
        self.rates
            .iter()
            .find(|r| r.unit == unit)
            .map(|r| r.price_usd)
            .ok_or_else(|| {
                Error::of(
                    ErrorKind::Invalid,
                    format!("product `{}` has no price per {unit:?}", self.id),
                    "add that rate to its `rates` in the price file",
                )
            })
    }

    /// `seconds` rounded as this product bills time: up to the granularity, at least the minimum.
    pub fn billed_seconds(&self, seconds: f64) -> f64 {
        let g = self.billing.granularity_s;
        // A hair of tolerance so 60.000000001 s of float noise is not billed as 61 s.
        let steps = (seconds / g - 1e-9).ceil().max(0.0);
        (steps * g).max(self.billing.minimum_s)
    }
}

impl PriceBook {
    /// Where the repository ships its price file (`data/cloud-prices.json` at its root).
    pub fn shipped_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/cloud-prices.json")
    }

    /// The price file the repository ships.
    pub fn load_shipped() -> Result<PriceBook> {
        PriceBook::load(&PriceBook::shipped_path())
    }

    /// Reads and checks a price file.
    pub fn load(path: &Path) -> Result<PriceBook> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let fix = if e.kind() == std::io::ErrorKind::NotFound {
                "the lab ships it as data/cloud-prices.json at the repository root: pass that \
                 path, or restore it with `git checkout -- data/cloud-prices.json`"
            } else {
                "check that the file is readable, then run it again"
            };
            Error::of(
                ErrorKind::Io,
                format!("cannot read the price file {}: {e}", path.display()),
                fix,
            )
        })?;
        PriceBook::parse(&text, &path.display().to_string())
    }

    /// Parses and checks price-file text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<PriceBook> {
        let book: PriceBook = serde_json::from_str(text).map_err(|e| {
            Error::of(
                ErrorKind::Invalid,
                format!(
                    "the price file {origin} is not a valid price list at line {}, column {}: {e}",
                    e.line(),
                    e.column()
                ),
                "correct the file there (compare with the repository's data/cloud-prices.json)",
            )
        })?;
        book.check(origin)?;
        Ok(book)
    }

    /// The product with this id.
    pub fn product(&self, id: &str) -> Result<&Product> {
        self.products.iter().find(|p| p.id == id).ok_or_else(|| {
            let ids: Vec<&str> = self.products.iter().map(|p| p.id.as_str()).collect();
            Error::of(
                ErrorKind::Invalid,
                format!("no product `{id}` in the price file"),
                format!("use one of: {}", ids.join(", ")),
            )
        })
    }

    /// The discount with this id.
    pub fn discount(&self, id: &str) -> Result<&Discount> {
        self.discounts.iter().find(|d| d.id == id).ok_or_else(|| {
            let ids: Vec<&str> = self.discounts.iter().map(|d| d.id.as_str()).collect();
            Error::of(
                ErrorKind::Invalid,
                format!("no discount `{id}` in the price file"),
                format!("use one of: {}", ids.join(", ")),
            )
        })
    }

    fn check(&self, origin: &str) -> Result<()> {
        let mut ids = std::collections::HashSet::new();
        for p in &self.products {
            let here = format!("product `{}` in {origin}", p.id);
            if !ids.insert(p.id.as_str()) {
                return Err(Error::of(
                    ErrorKind::Invalid,
                    format!("{here} appears twice"),
                    "give each product its own id",
                ));
            }
            check_provider(&p.provider, &here)?;
            check_dated(&p.source, &p.date_read, &here)?;
            for r in &p.rates {
                check_amount(r.price_usd, &format!("{here}: the price per {:?}", r.unit))?;
            }
            let b = &p.billing;
            if !(b.granularity_s.is_finite() && b.granularity_s > 0.0) {
                return Err(Error::of(
                    ErrorKind::Invalid,
                    format!(
                        "{here}: billing granularity_s cannot be {}",
                        b.granularity_s
                    ),
                    "give the billing step in seconds, above 0 (0.001 per ms, 1 per second, 3600 per hour)",
                ));
            }
            check_amount(b.minimum_s, &format!("{here}: billing minimum_s"))?;
            for unit in required_units(p) {
                p.rate(unit)?;
            }
        }
        for d in &self.discounts {
            let here = format!("discount `{}` in {origin}", d.id);
            check_provider(&d.provider, &here)?;
            check_dated(&d.source, &d.date_read, &here)?;
            if !(0.0..1.0).contains(&d.up_to_fraction) {
                return Err(Error::of(
                    ErrorKind::Invalid,
                    format!("{here}: up_to_fraction cannot be {}", d.up_to_fraction),
                    "give the most it takes off as a fraction from 0 up to (not including) 1: 0.72 for \"up to 72%\"",
                ));
            }
        }
        Ok(())
    }
}

/// The rates a product must carry for the bill to charge it as its model says.
fn required_units(p: &Product) -> Vec<Unit> {
    match p.model {
        Model::Function => vec![Unit::MillionRequests, Unit::GbSecond],
        Model::Container => vec![Unit::VcpuHour, Unit::GbHour],
        Model::Instance if p.size.is_some() => vec![Unit::InstanceHour],
        Model::Instance => vec![Unit::VcpuHour, Unit::GbHour],
        Model::RequestContainer => vec![Unit::MillionRequests, Unit::VcpuSecond, Unit::GibSecond],
    }
}

fn check_provider(provider: &str, here: &str) -> Result<()> {
    if KNOWN_PROVIDERS.contains(&provider) {
        return Ok(());
    }
    Err(Error::of(
        ErrorKind::Invalid,
        format!("{here} names an unknown provider `{provider}`"),
        format!("use one of: {}", KNOWN_PROVIDERS.join(", ")),
    ))
}

fn check_dated(source: &str, date_read: &str, here: &str) -> Result<()> {
    if source.trim().is_empty() || date_read.trim().is_empty() {
        return Err(Error::of(
            ErrorKind::Invalid,
            format!("{here} has no source page or no date read"),
            "give the page the price came from and the date it was read (or `undated` where \
             none was recorded): prices change",
        ));
    }
    Ok(())
}

/// The date a price was read (`YYYY-MM-DD` at the start of `date_read`), or `None` where the
/// file says no read date was recorded ("undated", "not recorded …").
pub fn read_on(date_read: &str) -> Option<&str> {
    let date = date_read.get(..10)?;
    let digits = |r: std::ops::Range<usize>| date[r].bytes().all(|b| b.is_ascii_digit());
    let dashes = date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-';
    (digits(0..4) && digits(5..7) && digits(8..10) && dashes).then_some(date)
}

fn check_amount(value: f64, what: &str) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        return Ok(());
    }
    Err(Error::of(
        ErrorKind::Invalid,
        format!("{what} cannot be {value}"),
        "prices and times are amounts of 0 or more: correct it in the price file",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped_text() -> String {
        std::fs::read_to_string(PriceBook::shipped_path()).unwrap()
    }

    #[test]
    fn the_shipped_file_loads_with_every_product_dated() {
        let book = PriceBook::load_shipped().unwrap();
        for id in [
            "aws-lambda-x86",
            "aws-fargate-x86",
            "aws-ec2-c7i.large",
            "gcp-cloud-run",
            "gcp-gce-e2",
        ] {
            let p = book.product(id).unwrap();
            assert!(!p.date_read.is_empty() && !p.source.is_empty());
        }
        assert_eq!(
            book.product("aws-lambda-x86")
                .unwrap()
                .rate(Unit::GbSecond)
                .unwrap(),
            0.0000166667
        );
        assert_eq!(
            book.discount("aws-ec2-spot").unwrap().kind,
            DiscountKind::Spot
        );
    }

    #[test]
    fn every_source_names_a_public_page_and_no_date_is_made_up() {
        let book = PriceBook::load_shipped().unwrap();
        let sourced = book
            .products
            .iter()
            .map(|p| (&p.source, &p.date_read))
            .chain(book.discounts.iter().map(|d| (&d.source, &d.date_read)));
        for (source, date_read) in sourced {
            assert!(source.contains("https://"), "no page to check: {source}");
            assert!(!source.contains("notes"), "{source}");
            // No figure in the file has a recorded read date: each says so instead of a date.
            assert_eq!(read_on(date_read), None, "{date_read}");
        }
        assert_eq!(read_on("2025-03-02, from the page"), Some("2025-03-02"));
        assert_eq!(read_on("undated"), None);
        assert_eq!(read_on("2025-3-2"), None);
    }

    #[test]
    fn a_missing_file_says_where_the_shipped_one_is() {
        let e = PriceBook::load(Path::new("/nonexistent/cloud-prices.json")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(
            e.to_string().contains("/nonexistent/cloud-prices.json"),
            "{e}"
        );
        assert!(e.fix().contains("data/cloud-prices.json"), "{e}");
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let e = PriceBook::parse(
            "{\n  \"about\": \"x\",\n  \"products\": [ oops ]\n}",
            "t.json",
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.problem().contains("line 3, column"), "{e}");
        assert!(e.to_string().starts_with("virtlab error: ") && e.to_string().contains("Fix: "));
    }

    #[test]
    fn an_unknown_provider_is_refused_with_the_known_ones() {
        let text = shipped_text().replacen("\"provider\": \"gcp\"", "\"provider\": \"azure\"", 1);
        let e = PriceBook::parse(&text, "t.json").unwrap_err();
        assert!(e.problem().contains("unknown provider `azure`"), "{e}");
        assert!(e.fix().contains("aws, gcp"), "{e}");
    }

    #[test]
    fn a_negative_price_is_refused() {
        let text = shipped_text().replacen("\"price_usd\": 0.04048", "\"price_usd\": -0.04048", 1);
        let e = PriceBook::parse(&text, "t.json").unwrap_err();
        assert!(
            e.problem().contains("aws-fargate-x86") && e.problem().contains("-0.04048"),
            "{e}"
        );
    }

    #[test]
    fn an_undated_price_and_a_missing_rate_are_refused() {
        let mut v: serde_json::Value = serde_json::from_str(&shipped_text()).unwrap();
        v["products"][3]["date_read"] = " ".into();
        let e = PriceBook::parse(&v.to_string(), "t").unwrap_err();
        assert!(
            e.problem().contains("aws-ec2-c7i.large") && e.problem().contains("no date read"),
            "{e}"
        );
        let mut v: serde_json::Value = serde_json::from_str(&shipped_text()).unwrap();
        v["products"][2]["rates"][1]["unit"] = "gib_second".into();
        let e = PriceBook::parse(&v.to_string(), "t").unwrap_err();
        assert!(
            e.problem().contains("aws-fargate-x86") && e.problem().contains("GbHour"),
            "{e}"
        );
    }

    #[test]
    fn time_is_rounded_up_to_the_step_and_the_minimum() {
        let book = PriceBook::load_shipped().unwrap();
        let fargate = book.product("aws-fargate-x86").unwrap();
        assert_eq!(fargate.billed_seconds(12.0), 60.0);
        assert_eq!(fargate.billed_seconds(60.2), 61.0);
        let lambda = book.product("aws-lambda-x86").unwrap();
        assert!((lambda.billed_seconds(0.0123) - 0.013).abs() < 1e-12);
        let ec2 = book.product("aws-ec2-c7i.large").unwrap();
        assert_eq!(ec2.billed_seconds(12.0), 60.0);
        assert_eq!(ec2.billed_seconds(3600.4), 3601.0);
    }
}
