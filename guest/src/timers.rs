//! `setTimeout`, `setInterval` and `Date.now` on the app's clock.
//!
//! Time only moves when the host says so, which makes every run
//! reproducible. It moves in one of two ways:
//! - exactly (`elmbox_advance`, virtual time): every timer due on the way
//!   fires at its own instant, so `Time.every` ticks carry predictable
//!   timestamps however far the clock goes;
//! - catching up (`elmbox_advance_to`, and an event dispatched at an instant:
//!   the wall clock of `serve`): the clock jumps first, and what came due in
//!   the gap fires once, at once, as in a browser or Node.js after a
//!   suspended process; an interval then keeps its period from the new
//!   instant instead of firing once per period missed.
//!
//! Elm's outgoing-port manager parks itself on a `setTimeout(…, 0)` after each
//! batch, so draining due timers after every dispatch is what delivers output.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use rquickjs::{
    prelude::{Opt, Rest},
    Coerced, Ctx, Exception, FromJs, Function, Persistent, Result, Value,
};

/// Queue position: due time, then arming order, so equal deadlines fire in
/// the order they were set, as in browsers and Node.
type Slot = (u64, u64, u32);

struct Timer {
    callback: Persistent<Function<'static>>,
    args: Vec<Persistent<Value<'static>>>,
    /// `Some(period)` for `setInterval`.
    period: Option<u64>,
    slot: Slot,
}

#[derive(Default)]
struct Clock {
    /// Milliseconds since load.
    now: u64,
    /// Wall-clock time at load, as `Date.now()` reports it.
    epoch_ms: f64,
    next_id: u32,
    armed: u64,
    queue: BTreeSet<Slot>,
    timers: HashMap<u32, Timer>,
    /// Timers that came due (armed before this call) fired in this call.
    fired: u32,
    /// `armed` when this call began: later slots were set during it.
    armed_before_call: u64,
}

thread_local! {
    static CLOCK: RefCell<Clock> = RefCell::new(Clock::default());
}

/// A timer that is due, taken off the queue, ready to be called.
pub struct Due {
    pub id: u32,
    /// The instant it was due at (the clock may be past it, catching up).
    pub due: u64,
    pub callback: Persistent<Function<'static>>,
    pub args: Vec<Persistent<Value<'static>>>,
    pub is_interval: bool,
}

/// Installs the timer functions and a `Date` that reads the virtual clock.
pub fn install(ctx: &Ctx<'_>, epoch_ms: f64) -> Result<()> {
    CLOCK.with_borrow_mut(|c| c.epoch_ms = epoch_ms);
    let globals = ctx.globals();
    globals.set(
        "setTimeout",
        Function::new(ctx.clone(), |ctx, f, delay, args| {
            arm(ctx, f, delay, args, false)
        })?
        .with_name("setTimeout")?,
    )?;
    globals.set(
        "setInterval",
        Function::new(ctx.clone(), |ctx, f, delay, args| {
            arm(ctx, f, delay, args, true)
        })?
        .with_name("setInterval")?,
    )?;
    for name in ["clearTimeout", "clearInterval"] {
        globals.set(name, Function::new(ctx.clone(), clear)?.with_name(name)?)?;
    }

    // `Date.now()` and `new Date()` follow the virtual clock; dates built from
    // arguments are untouched. The Proxy keeps `Date.UTC`, `instanceof Date`
    // and the prototype exactly as QuickJS defines them.
    let date: rquickjs::Object = globals.get("Date")?;
    date.set("now", Function::new(ctx.clone(), now_ms)?.with_name("now")?)?;
    ctx.eval::<(), _>(
        "globalThis.Date = new Proxy(Date, {\n\
           construct(D, args, target) { return Reflect.construct(D, args.length ? args : [D.now()], target); },\n\
           apply(D) { return new D(D.now()).toString(); },\n\
         });",
    )?;
    Ok(())
}

/// `Date.now()`: the epoch given at load plus virtual time elapsed.
pub fn now_ms() -> f64 {
    CLOCK.with_borrow(|c| c.epoch_ms + c.now as f64)
}

/// Moves the epoch so that `Date.now()` reads `now_ms` at this virtual
/// instant; timers keep their places, which count from load.
pub fn rebase(now_ms: f64) {
    CLOCK.with_borrow_mut(|c| c.epoch_ms = now_ms - c.now as f64);
}

/// Virtual milliseconds since load.
pub fn elapsed() -> u64 {
    CLOCK.with_borrow(|c| c.now)
}

fn arm<'js>(
    ctx: Ctx<'js>,
    callback: Value<'js>,
    delay: Opt<Value<'js>>,
    args: Rest<Value<'js>>,
    repeat: bool,
) -> Result<u32> {
    let Some(callback) = callback.into_function() else {
        return Err(Exception::throw_type(
            &ctx,
            "elmbox timers take a function (string callbacks are not evaluated)",
        ));
    };
    let delay = match delay.0 {
        Some(v) if !v.is_undefined() => Coerced::<f64>::from_js(&ctx, v)?.0,
        _ => 0.0,
    };
    // Like browsers: NaN and negative delays mean "now", fractions truncate.
    let mut delay = if delay.is_finite() && delay > 0.0 {
        delay as u64
    } else {
        0
    };
    if repeat {
        // A zero-period interval would re-fire forever without time moving.
        delay = delay.max(1);
    }
    let callback = Persistent::save(&ctx, callback);
    let args = args
        .0
        .into_iter()
        .map(|a| Persistent::save(&ctx, a))
        .collect();
    Ok(CLOCK.with_borrow_mut(|c| {
        let id = c.fresh_id();
        let slot = c.schedule(id, delay);
        c.timers.insert(
            id,
            Timer {
                callback,
                args,
                period: repeat.then_some(delay),
                slot,
            },
        );
        id
    }))
}

fn clear(id: Opt<Value<'_>>) {
    let Some(id) = id.0.and_then(|v| v.as_number()) else {
        return;
    };
    if !(id >= 0.0 && id <= u32::MAX as f64) {
        return;
    }
    // Dropping the timer releases its callback outside the borrow.
    let removed = CLOCK.with_borrow_mut(|c| {
        let timer = c.timers.remove(&(id as u32))?;
        c.queue.remove(&timer.slot);
        Some(timer)
    });
    drop(removed);
}

impl Clock {
    fn fresh_id(&mut self) -> u32 {
        loop {
            self.next_id = self.next_id.wrapping_add(1);
            if self.next_id != 0 && !self.timers.contains_key(&self.next_id) {
                return self.next_id;
            }
        }
    }

    fn schedule(&mut self, id: u32, delay: u64) -> Slot {
        self.armed += 1;
        let slot = (self.now.saturating_add(delay), self.armed, id);
        self.queue.insert(slot);
        slot
    }
}

/// Takes the earliest timer due at or before `limit`, moving the clock to its
/// deadline. Intervals stay registered; call [`rearm`] after running them.
pub fn take_due(limit: u64) -> Option<Due> {
    CLOCK.with_borrow_mut(|c| {
        let &slot = c.queue.first()?;
        let (due, _, id) = slot;
        if due > limit {
            return None;
        }
        c.queue.remove(&slot);
        c.now = c.now.max(due);
        if slot.1 <= c.armed_before_call {
            c.fired = c.fired.saturating_add(1);
        }
        let timer = c.timers.get(&id)?;
        let due = Due {
            id,
            due,
            callback: timer.callback.clone(),
            args: timer.args.clone(),
            is_interval: timer.period.is_some(),
        };
        if !due.is_interval {
            c.timers.remove(&id);
        }
        Some(due)
    })
}

/// Puts an interval that was due at `due` back on the queue, unless its
/// callback cleared it: a period after `due`, or, if the clock is past
/// that already (it caught up over a gap), a period after now.
pub fn rearm(id: u32, due: u64) {
    CLOCK.with_borrow_mut(|c| {
        let Some(period) = c.timers.get(&id).and_then(|t| t.period) else {
            return;
        };
        let next = due.saturating_add(period);
        let delay = if next > c.now { next - c.now } else { period };
        let slot = c.schedule(id, delay);
        if let Some(timer) = c.timers.get_mut(&id) {
            timer.slot = slot;
        }
    })
}

/// Moves the clock forward to `to` (never backwards).
pub fn set_now(to: u64) {
    CLOCK.with_borrow_mut(|c| c.now = c.now.max(to));
}

/// How many timers are armed.
pub fn pending() -> usize {
    CLOCK.with_borrow(|c| c.timers.len())
}

/// When the earliest armed timer is due (ms since load).
pub fn next_due() -> Option<u64> {
    CLOCK.with_borrow(|c| c.queue.first().map(|&(due, _, _)| due))
}

/// Starts counting the timers a call fires.
pub fn begin_call() {
    CLOCK.with_borrow_mut(|c| {
        c.fired = 0;
        c.armed_before_call = c.armed;
    })
}

/// How many timers that were armed before this call fired in it: those
/// that came due as time passed, not the zero-delay ones the call itself
/// set off (Elm's port manager parks on one after every batch).
pub fn take_fired() -> u32 {
    CLOCK.with_borrow_mut(|c| std::mem::take(&mut c.fired))
}

/// What `Date.now()` read at the instant of load.
pub fn epoch_ms() -> f64 {
    CLOCK.with_borrow(|c| c.epoch_ms)
}
