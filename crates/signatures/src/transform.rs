//! Transformations: the views of a value that signatures are matched against.
//! (Interface fixed; implementation in progress.)

/// A transformation a signature can ask for. Applied in the order the signature lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transform {
    UrlDecode,
    HtmlDecode,
    Lowercase,
    CompressWhitespace,
    Shell,
    Base64,
}

impl Transform {
    pub const ALL: [Transform; 6] = [
        Transform::UrlDecode,
        Transform::HtmlDecode,
        Transform::Lowercase,
        Transform::CompressWhitespace,
        Transform::Shell,
        Transform::Base64,
    ];

    /// The name used in pack files.
    pub fn pack_name(self) -> &'static str {
        match self {
            Transform::UrlDecode => "url_decode",
            Transform::HtmlDecode => "html_decode",
            Transform::Lowercase => "lowercase",
            Transform::CompressWhitespace => "compress_whitespace",
            Transform::Shell => "shell",
            Transform::Base64 => "base64",
        }
    }

    pub fn from_pack_name(s: &str) -> Option<Transform> {
        Transform::ALL.into_iter().find(|t| t.pack_name() == s)
    }

    /// Applies the transformation to `input`. Returns `false`, leaving `out` empty, when the
    /// result would equal `input` (the common case: most values need no decoding, and the
    /// caller then reuses `input` without a copy). Returns `true` with the result in `out`
    /// otherwise. `out` is cleared first either way.
    pub fn apply(self, input: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        let _ = input;
        false
    }
}
