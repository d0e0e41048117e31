//! Connections: [`Dialer`] makes them, [`Conn`] carries requests over one.

mod conn;
mod dialer;

pub use conn::Conn;
pub use dialer::{
    Dialer, DEFAULT_CLIENT_ID, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_REQUEST_TIMEOUT,
};
