//! Authentication for scantag: the WeChat mini-program server API client (login code exchange,
//! access token, phone number, QR codes, subscribe messages) and JWT issuing/verification.

pub mod jwt;
pub mod wechat;
