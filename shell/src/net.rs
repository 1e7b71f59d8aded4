//! Socket creation: listening sockets (SO_REUSEPORT for workers) and upstream sockets.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

/// Receive buffer asked for client UDP sockets: a burst of a few thousand queries waits in
/// the kernel while a worker is busy (the default, about 200 KiB, holds some 256 datagrams;
/// Unbound recommends `so-rcvbuf: 4m` for the same reason). The kernel caps it at
/// `net.core.rmem_max`; a refusal leaves the default.
const UDP_RECV_BUFFER: usize = 4 << 20;

/// A bound socket of the given kind. Listening TCP sockets get a backlog of 1024; UDP
/// sockets a receive buffer of 4 MiB (see `UDP_RECV_BUFFER`).
pub fn bind(addr: SocketAddr, tcp: bool, reuse_port: bool) -> io::Result<Socket> {
    let (ty, proto) = if tcp {
        (Type::STREAM, Protocol::TCP)
    } else {
        (Type::DGRAM, Protocol::UDP)
    };
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if tcp {
        s.set_reuse_address(true)?;
    } else {
        let _ = s.set_recv_buffer_size(UDP_RECV_BUFFER); // best effort, see above
    }
    if reuse_port {
        set_reuse_port(&s)?;
    }
    s.bind(&addr.into())?;
    if tcp {
        s.listen(1024)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Whether this system spreads datagrams over several sockets bound to one address
/// (SO_REUSEPORT); where it cannot, workers share one socket per address instead.
pub const HAS_REUSE_PORT: bool = cfg!(not(any(target_os = "illumos", target_os = "solaris")));

#[cfg(not(any(target_os = "illumos", target_os = "solaris")))]
fn set_reuse_port(s: &Socket) -> io::Result<()> {
    s.set_reuse_port(true)
}

#[cfg(any(target_os = "illumos", target_os = "solaris"))]
fn set_reuse_port(_: &Socket) -> io::Result<()> {
    Ok(())
}

/// A UDP socket on `local_port`, connected to `to`, for one upstream try.
pub fn upstream_udp(to: SocketAddr, local_port: u16) -> io::Result<std::net::UdpSocket> {
    let ip = match to.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    // Non-blocking and close-on-exec from the start: one system call, not three.
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let ty = Type::DGRAM.nonblocking().cloexec();
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let ty = Type::DGRAM;
    let s = Socket::new(Domain::for_address(to), ty, Some(Protocol::UDP))?;
    s.bind(&SocketAddr::new(ip, local_port).into())?;
    s.connect(&to.into())?;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// The process's file descriptor limit after raising the soft limit to the hard one (each
/// upstream try is a socket of its own, and the common soft limit of 1024 is far below
/// what `--max-inflight` needs): `(before, now)`.
pub fn raise_fd_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = rlim_u64(lim.rlim_cur);
    if lim.rlim_cur >= lim.rlim_max {
        return Ok((before, before));
    }
    lim.rlim_cur = lim.rlim_max;
    // macOS refuses a soft limit above OPEN_MAX (10240 in <sys/syslimits.h>), and its
    // hard limit is often unlimited.
    #[cfg(target_vendor = "apple")]
    {
        lim.rlim_cur = lim.rlim_cur.min(10240);
        if rlim_u64(lim.rlim_cur) <= before {
            return Ok((before, before));
        }
    }
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((before, rlim_u64(lim.rlim_cur)))
}

/// A limit as `u64`: `rlim_t` is unsigned on Linux and macOS, signed on the BSDs (where a
/// negative value never comes back from getrlimit).
#[allow(clippy::unnecessary_fallible_conversions, clippy::useless_conversion)]
fn rlim_u64(value: libc::rlim_t) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
