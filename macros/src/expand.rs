//! The expansion: the function's body runs inside `distlock`'s scoped locking.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Error, ItemFn, Result, ReturnType, Type};

use crate::args::{LockedArgs, WaitArg};
use crate::name::name_expr;

const RETURN_RULE: &str = "#[distlock::locked] functions must return `Result<T, E>` where \
                           `E: From<distlock::LockError>`";

pub fn expand(args: LockedArgs, item: ItemFn) -> Result<TokenStream> {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = item;
    if sig.asyncness.is_none() {
        return Err(Error::new(
            sig.fn_token.span,
            "#[distlock::locked] goes on an `async fn`",
        ));
    }
    let ret = match &sig.output {
        ReturnType::Type(_, ty) if result_like(ty) => ty.as_ref().clone(),
        ReturnType::Type(_, ty) => return Err(Error::new_spanned(ty, RETURN_RULE)),
        ReturnType::Default => return Err(Error::new(sig.ident.span(), RETURN_RULE)),
    };
    let name = name_expr(args.name.as_ref(), &sig)?;
    let wait = match args.wait {
        None | Some(WaitArg::Forever) => quote! { ::distlock::Wait::Forever },
        Some(WaitArg::Try) => quote! { ::distlock::Wait::Try },
        Some(WaitArg::Up(limit)) => {
            let (secs, nanos) = (limit.as_secs(), limit.subsec_nanos());
            quote! { ::distlock::Wait::Up(::std::time::Duration::new(#secs, #nanos)) }
        }
    };
    let ttl = match args.ttl {
        None => quote! {},
        Some(ttl) => {
            let (secs, nanos) = (ttl.as_secs(), ttl.subsec_nanos());
            quote! { .with_ttl(::std::time::Duration::new(#secs, #nanos)) }
        }
    };
    let renew = match args.renew {
        None => quote! {},
        Some(on) => quote! { .with_renewal(#on) },
    };
    let body = match &args.guard {
        // Not `move`: the body borrows the arguments the way it would without the lock.
        None => quote! {
            {
                let __distlock_body = async {
                    #[allow(unreachable_code)]
                    let __distlock_ret: #ret = #block;
                    #[allow(unreachable_code)]
                    __distlock_ret
                };
                move |_: ::distlock::ScopedLock| __distlock_body
            }
        },
        // The handle only exists once the lock is held, so the body is built then, and
        // owns the arguments it uses (as an `async fn` body does).
        Some(guard) => quote! {
            move |#guard: ::distlock::ScopedLock| async move {
                #[allow(unreachable_code)]
                let __distlock_ret: #ret = #block;
                #[allow(unreachable_code)]
                __distlock_ret
            }
        },
    };
    // Errors about the return type point at it, not at the attribute.
    let run = match &args.locks {
        Some(locks) => quote_spanned! {ret.span()=>
            ::distlock::__private::locked(&(#locks), __distlock_name, __distlock_options, __distlock_body).await
        },
        None => quote_spanned! {ret.span()=>
            ::distlock::__private::locked_default(__distlock_name, __distlock_options, __distlock_body).await
        },
    };
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            let __distlock_name: ::std::string::String = #name;
            let __distlock_options = ::distlock::AcquireOptions::default()
                .with_wait(#wait) #ttl #renew;
            let __distlock_body = #body;
            #run
        }
    })
}

/// Return types that cannot be a `Result` are refused here with a clear message; paths
/// (`Result<…>`, `io::Result<…>`, an alias) are left to the trait bound, which names the rule.
fn result_like(ty: &Type) -> bool {
    match ty {
        Type::Path(_) => true,
        Type::Group(g) => result_like(&g.elem),
        Type::Paren(p) => result_like(&p.elem),
        _ => false,
    }
}
