//! The `http` import a plugin posts through: what it lets out (`outbound`: URLs, the
//! operator's grants, addresses, headers; pure, so the fuzz targets build it without the
//! runtime) and the I/O itself (`net`: deadlines, TLS, bounded replies).

#[cfg(feature = "runtime")]
pub(in crate::plugin) mod net;
pub mod outbound;
