//! `Math.random` with its state in linear memory, seeded when the app is
//! loaded: so a snapshot of the sandbox holds the generator's state, and the
//! same inputs from the same state draw the same numbers (replay, restore).
//! QuickJS's own `Math.random` is seeded from the clock when the context is
//! made, which a restored or replayed app would redo differently.

use std::cell::RefCell;

use rquickjs::{Ctx, Function, Object, Result};

thread_local! {
    static RANDOM: RefCell<fastrand::Rng> = const { RefCell::new(fastrand::Rng::with_seed(0)) };
}

/// Installs `Math.random`, seeded with `seed` (or from the host's
/// randomness when there is none).
pub fn install(ctx: &Ctx<'_>, seed: Option<u64>) -> Result<()> {
    reseed(seed.unwrap_or_else(|| fastrand::Rng::new().u64(..)));
    let math: Object = ctx.globals().get("Math")?;
    let random = Function::new(ctx.clone(), || RANDOM.with_borrow_mut(fastrand::Rng::f64))?
        .with_name("random")?;
    math.set("random", random)
}

/// Starts the generator over from `seed`.
pub fn reseed(seed: u64) {
    RANDOM.with_borrow_mut(|rng| rng.seed(seed));
}
