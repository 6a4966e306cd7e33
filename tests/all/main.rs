//! Every end-to-end test in one binary (as wasmtime's `tests/all`): the
//! binary links wasmtime once, and the tests share one compiled guest
//! (`elmbox_tests::runtime`). One module per area.

mod app_names;
mod cli;
mod counter;
mod deploy_under_load;
mod durable;
mod durable_http;
mod durable_postgres;
mod elm_analyse;
mod errors;
mod faults;
mod http_api_fuzz;
mod limits;
mod managers;
mod memory;
mod migration;
mod outgoing_http;
mod pool;
mod pool_thousand;
mod port_json;
mod ports;
mod power_loss;
mod replay_memory;
mod retention;
mod runtime;
mod serve;
mod served;
mod standalone;
mod startup;
mod state;
mod store_faults;
mod support;
mod timers;
mod wall_clock;
mod wordcount;
mod xhr;
