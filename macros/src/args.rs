//! The attribute's named arguments: `name`, `wait`, `ttl`, `renew`, `locks`, `guard`.

use std::time::Duration;

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Error, Expr, ExprLit, Ident, Lit, LitBool, LitStr, MetaNameValue, Result, Token};

const KNOWN: &str = "name, wait, ttl, renew, locks, guard";

/// How long to wait, as the `wait` argument said.
pub enum WaitArg {
    Try,
    Up(Duration),
    Forever,
}

/// The parsed attribute.
#[derive(Default)]
pub struct LockedArgs {
    pub name: Option<LitStr>,
    pub wait: Option<WaitArg>,
    pub ttl: Option<Duration>,
    pub renew: Option<LitBool>,
    pub locks: Option<Expr>,
    pub guard: Option<Ident>,
}

impl Parse for LockedArgs {
    fn parse(input: ParseStream) -> Result<Self> {
        let pairs = Punctuated::<MetaNameValue, Token![,]>::parse_terminated(input)?;
        let mut args = LockedArgs::default();
        for pair in pairs {
            let Some(key) = pair.path.get_ident().map(|i| i.to_string()) else {
                return Err(Error::new_spanned(
                    &pair.path,
                    format!("expected one of {KNOWN}"),
                ));
            };
            let duplicate = match key.as_str() {
                "name" => args.name.replace(string(&pair.value, "name")?).is_some(),
                "wait" => args.wait.replace(wait(&pair.value)?).is_some(),
                "ttl" => args.ttl.replace(ttl(&pair.value)?).is_some(),
                "renew" => args.renew.replace(boolean(&pair.value)?).is_some(),
                "locks" => args.locks.replace(pair.value.clone()).is_some(),
                "guard" => args.guard.replace(ident(&pair.value)?).is_some(),
                _ => {
                    return Err(Error::new_spanned(
                        &pair.path,
                        format!("unknown argument `{key}`; expected one of {KNOWN}"),
                    ))
                }
            };
            if duplicate {
                return Err(Error::new_spanned(
                    &pair.path,
                    format!("`{key}` given twice"),
                ));
            }
        }
        Ok(args)
    }
}

fn string(value: &Expr, key: &str) -> Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(Error::new_spanned(
            other,
            format!("`{key}` takes a string literal"),
        )),
    }
}

fn ident(value: &Expr) -> Result<Ident> {
    match value {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident().cloned().ok_or_else(|| {
            Error::new_spanned(
                p,
                "`guard` takes the name of a variable, e.g. `guard = lock`",
            )
        }),
        other => Err(Error::new_spanned(
            other,
            "`guard` takes the name of a variable, e.g. `guard = lock`",
        )),
    }
}

fn boolean(value: &Expr) -> Result<LitBool> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.clone()),
        other => Err(Error::new_spanned(other, "`renew` takes `true` or `false`")),
    }
}

fn duration(lit: &LitStr) -> Result<Duration> {
    humantime::parse_duration(lit.value().trim()).map_err(|e| {
        Error::new(
            lit.span(),
            format!(
                "invalid duration {:?}: {e} (write e.g. \"500ms\", \"5s\", \"2m\")",
                lit.value()
            ),
        )
    })
}

fn wait(value: &Expr) -> Result<WaitArg> {
    let lit = string(value, "wait")?;
    match lit.value().trim() {
        "try" => Ok(WaitArg::Try),
        "forever" => Ok(WaitArg::Forever),
        _ => {
            let limit = duration(&lit)?;
            Ok(if limit.is_zero() {
                WaitArg::Try
            } else {
                WaitArg::Up(limit)
            })
        }
    }
}

fn ttl(value: &Expr) -> Result<Duration> {
    let lit = string(value, "ttl")?;
    let ttl = duration(&lit)?;
    if ttl.is_zero() {
        return Err(Error::new(lit.span(), "`ttl` must be longer than zero"));
    }
    Ok(ttl)
}
