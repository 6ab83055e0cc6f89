//! One module per subcommand, each with its `run` and its rendering (unit-tested on fixture rows).

pub mod cancel;
pub mod completion;
pub mod cost;
pub mod doctor;
pub mod logs;
pub mod ls;
pub mod status;
pub mod submit;
pub mod ui;
pub mod watch;
