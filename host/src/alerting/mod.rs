//! Alerts once rules raised them: the book of active alerts and what each receiver is to
//! be told when ([`book`]), and the history every change is written to ([`history`]).
//! No plugin knowledge: `plugin::alerts` feeds it and delivers what it says is due.

pub mod book;
pub mod history;

pub use book::{AlertBook, Outcome, Routing};
pub use history::{AlertHistory, HistoryQuery};
