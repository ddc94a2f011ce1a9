//! Driving a future one suspension at a time, so a case can cancel it at each of its await
//! points in turn instead of at random instants.
//!
//! The window in which a cancelled acquire can leak (the store granted the hold, the reply
//! is in flight or not yet processed) is often under a millisecond: a random cut finds it by
//! luck. Stepping finds it every time: the future is polled only when it was woken, every
//! `Pending` is one await point, and a case drops it either right after the n-th `Pending`
//! (the request is out, its reply not read) or right after the wake that follows it (the
//! reply is there, not yet processed).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::task::ArcWake;

/// Where a stepped future stopped.
pub(crate) enum Step<T> {
    /// It completed.
    Finished(T),
    /// It returned `Pending` the asked number of times.
    Suspended,
    /// It stayed asleep (not woken) for the whole quiet period: it waits for something
    /// outside (a held lock's release).
    Parked,
}

/// The wake flag the stepped future sees instead of the task's waker; a wake also wakes
/// the task that steps it.
struct Flag {
    woken: AtomicBool,
    outer: std::sync::Mutex<Option<Waker>>,
}

impl Flag {
    fn set_outer(&self, cx: &Context<'_>) {
        *self.outer.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
    }
}

impl ArcWake for Flag {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.woken.store(true, Ordering::SeqCst);
        let outer = arc_self.outer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = outer.as_ref() {
            w.wake_by_ref();
        }
    }
}

pub(crate) struct Stepped<F: Future> {
    fut: Pin<Box<F>>,
    flag: Arc<Flag>,
    /// How many times it returned `Pending` so far.
    pendings: usize,
}

impl<F: Future> Stepped<F> {
    pub fn new(fut: F) -> Self {
        Stepped {
            fut: Box::pin(fut),
            flag: Arc::new(Flag {
                // The first poll needs no wake.
                woken: AtomicBool::new(true),
                outer: std::sync::Mutex::new(None),
            }),
            pendings: 0,
        }
    }

    /// Polls the future, each time it is woken, until it completes, has returned `Pending`
    /// `n` more times, or sleeps unwoken for `quiet`.
    pub async fn advance(&mut self, n: usize, quiet: Duration) -> Step<F::Output> {
        let target = self.pendings.saturating_add(n);
        let mut quiet_timer = Box::pin(tokio::time::sleep(quiet));
        // Borrowed apart: a shared borrow of the whole across an await would need F: Sync.
        let Stepped {
            fut,
            flag,
            pendings,
        } = self;
        std::future::poll_fn(|cx| {
            flag.set_outer(cx);
            loop {
                if !flag.woken.swap(false, Ordering::SeqCst) {
                    if quiet_timer.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Step::Parked);
                    }
                    return Poll::Pending;
                }
                let waker = futures::task::waker(flag.clone());
                match fut.as_mut().poll(&mut Context::from_waker(&waker)) {
                    Poll::Ready(v) => return Poll::Ready(Step::Finished(v)),
                    Poll::Pending => {
                        *pendings += 1;
                        if *pendings >= target {
                            return Poll::Ready(Step::Suspended);
                        }
                        quiet_timer
                            .as_mut()
                            .reset(tokio::time::Instant::now() + quiet);
                    }
                }
            }
        })
        .await
    }

    /// Waits, without polling, until the future is woken (what it awaited happened).
    /// Returns whether that came within `limit`.
    pub async fn woken_within(&mut self, limit: Duration) -> bool {
        let mut timer = Box::pin(tokio::time::sleep(limit));
        let flag = &self.flag;
        std::future::poll_fn(|cx| {
            flag.set_outer(cx);
            if flag.woken.load(Ordering::SeqCst) {
                return Poll::Ready(true);
            }
            timer.as_mut().poll(cx).map(|()| false)
        })
        .await
    }
}
