//! The `#[distlock::locked]` attribute macro. Use it through the `distlock` crate (feature
//! `macros`, on by default), whose docs describe it: the expansion refers to `::distlock`.
#![warn(missing_docs)]

mod args;
mod expand;
mod name;

use proc_macro::TokenStream;

/// Runs an `async fn` while holding a distributed lock named after its arguments.
///
/// See `distlock::locked` for the arguments and the signature rules.
#[proc_macro_attribute]
pub fn locked(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = syn::parse_macro_input!(attr as args::LockedArgs);
    let item = syn::parse_macro_input!(item as syn::ItemFn);
    expand::expand(args, item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
