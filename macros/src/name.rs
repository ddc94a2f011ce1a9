//! The lock name: a format string over the function's arguments, made absolute or prefixed
//! with the module path.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Error, FnArg, Ident, LitStr, Pat, Result, Signature};

/// The expression that builds the lock name (a `String`) inside the function.
pub fn name_expr(name: Option<&LitStr>, sig: &Signature) -> Result<TokenStream> {
    let Some(lit) = name else {
        // No name: one lock per function.
        let fn_name = sig.ident.to_string();
        return Ok(quote! {
            ::std::string::String::from(::core::concat!(::core::module_path!(), "::", #fn_name))
        });
    };
    let text = lit.value();
    check_placeholders(lit, &text, &argument_names(sig))?;
    if let Some(absolute) = text.strip_prefix('/') {
        if absolute.is_empty() {
            return Err(Error::new(lit.span(), "the lock name after `/` is empty"));
        }
        // Same span: the placeholders still capture the function's arguments.
        let absolute = LitStr::new(absolute, lit.span());
        return Ok(quote! { ::std::format!(#absolute) });
    }
    if text.is_empty() {
        return Err(Error::new(lit.span(), "the lock name is empty"));
    }
    Ok(quote! {
        ::std::format!("{}::{}", ::core::module_path!(), ::std::format!(#lit))
    })
}

fn argument_names(sig: &Signature) -> Vec<Ident> {
    sig.inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(p) => Some(p.ident.clone()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// Every `{…}` must name an argument of the function (`{order_id}`, `{order_id:>08}`).
fn check_placeholders(lit: &LitStr, text: &str, args: &[Ident]) -> Result<()> {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
            }
            '{' => {
                let inner: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let arg = inner.split(':').next().unwrap_or("").trim();
                if !args.iter().any(|a| a == arg) {
                    let listed = args
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", ");
                    let msg = if arg.is_empty() || arg.chars().all(|c| c.is_ascii_digit()) {
                        format!(
                            "`{{{inner}}}` in the lock name: placeholders must name an argument \
                             of the function ({listed})"
                        )
                    } else {
                        format!(
                            "`{arg}` in the lock name is not an argument of this function \
                             (arguments: {listed})"
                        )
                    };
                    return Err(Error::new(lit.span(), msg));
                }
            }
            '}' => {
                return Err(Error::new(
                    lit.span(),
                    "unmatched `}` in the lock name (write `}}` for a literal brace)",
                ))
            }
            _ => {}
        }
    }
    Ok(())
}
