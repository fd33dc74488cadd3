//! AMF0, the encoding of RTMP command and data messages.
//!
//! Decoding is bounded three ways ([`Amf0Limits`]): string length, nesting depth and the
//! number of values in one decode call. Declared lengths and counts are checked against the
//! bytes actually present before anything is allocated, so a tiny message cannot make the
//! decoder reserve gigabytes.
//!
//! References (0x07), typed objects (0x10), AMF3 switches (0x11) and the Flash-only types
//! are refused with [`Error::Amf0Unsupported`]: RTMP commands never need them, and honouring
//! references would let a peer build cyclic or exponential structures.

use bytes::BufMut;

use crate::Error;

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0a;
const DATE: u8 = 0x0b;
const LONG_STRING: u8 = 0x0c;

/// One AMF0 value.
///
/// Strings decoded from either the short (0x02) or the long (0x0C) form become
/// [`Value::String`]; the encoder picks the long form only when the string needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// IEEE-754 double (0x00).
    Number(f64),
    /// Boolean (0x01).
    Boolean(bool),
    /// UTF-8 string (0x02, or 0x0C when longer than 65535 bytes).
    String(String),
    /// Anonymous object (0x03): keys keep their order, unknown keys are kept.
    Object(Object),
    /// Null (0x05).
    Null,
    /// Undefined (0x06).
    Undefined,
    /// ECMA (associative) array (0x08).
    EcmaArray(Object),
    /// Strict (dense) array (0x0A).
    StrictArray(Vec<Value>),
    /// Date (0x0B): milliseconds since the epoch and a time zone (which AMF0 says to ignore).
    Date {
        /// Milliseconds since 1970-01-01 UTC.
        millis: f64,
        /// Time zone offset in minutes, normally 0.
        timezone: i16,
    },
}

impl Value {
    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is a number.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The object's entries, if this is an object or an ECMA array.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) | Value::EcmaArray(o) => Some(o),
            _ => None,
        }
    }

    /// Shorthand for `Value::String(s.into())`.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
}

/// The entries of an AMF0 object or ECMA array, in wire order.
///
/// A `Vec` rather than a map: order matters to some peers, duplicate keys must survive a
/// round trip, and command objects are small enough that a linear lookup is fastest.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object(pub Vec<(String, Value)>);

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Object(Vec::new())
    }

    /// The first value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The first value under `key`, if it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The first value under `key`, if it is a number.
    pub fn get_number(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_number)
    }

    /// Replaces the first value under `key`, or appends the pair.
    pub fn set(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Appends a pair (builder style).
    pub fn with(mut self, key: impl Into<String>, value: Value) -> Self {
        self.0.push((key.into(), value));
        self
    }

    /// Iterates over the entries in order.
    pub fn iter(&self) -> impl Iterator<Item = &(String, Value)> {
        self.0.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, Value)> for Object {
    fn from_iter<T: IntoIterator<Item = (String, Value)>>(iter: T) -> Self {
        Object(iter.into_iter().collect())
    }
}

/// Bounds applied while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amf0Limits {
    /// Longest string or object key, in bytes. Default 64 KiB: ample for URLs carrying
    /// long tokens, small next to the message size limit.
    pub max_string_len: usize,
    /// Deepest nesting of objects and arrays. Default 32 (Enhanced RTMP's connect uses 2).
    pub max_depth: usize,
    /// Most values (counting nested ones and keys' values) in one decode call. Default 4096.
    pub max_values: usize,
}

impl Default for Amf0Limits {
    fn default() -> Self {
        Amf0Limits {
            max_string_len: 64 * 1024,
            max_depth: 32,
            max_values: 4096,
        }
    }
}

/// Decodes every value in `input`, which must end on a value boundary.
pub fn decode_all(input: &[u8], limits: &Amf0Limits) -> Result<Vec<Value>, Error> {
    let mut decoder = Decoder::new(input, limits);
    let mut values = Vec::new();
    while decoder.has_remaining() {
        values.push(decoder.next_value()?);
    }
    Ok(values)
}

/// A bounded cursor over AMF0 bytes, after rustls's `codec::Reader`: every read is checked
/// against what is left, and failure to read is an error, never a panic.
#[derive(Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    limits: Amf0Limits,
    values_left: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf`; the value budget covers the decoder's whole life.
    pub fn new(buf: &'a [u8], limits: &Amf0Limits) -> Self {
        Decoder {
            buf,
            pos: 0,
            limits: *limits,
            values_left: limits.max_values,
        }
    }

    /// Whether unread bytes remain.
    pub fn has_remaining(&self) -> bool {
        self.pos < self.buf.len()
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Decodes the next value.
    pub fn next_value(&mut self) -> Result<Value, Error> {
        self.value(0)
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Amf0Truncated)?;
        let slice = self.buf.get(self.pos..end).ok_or(Error::Amf0Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64, Error> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    fn utf8(&mut self, len: usize) -> Result<String, Error> {
        if len > self.limits.max_string_len {
            return Err(Error::Amf0StringTooLong {
                len: len as u64,
                limit: self.limits.max_string_len,
            });
        }
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| Error::Amf0Utf8)
    }

    fn count_value(&mut self) -> Result<(), Error> {
        self.values_left = self
            .values_left
            .checked_sub(1)
            .ok_or(Error::Amf0TooManyValues(self.limits.max_values))?;
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        self.count_value()?;
        let marker = self.u8()?;
        Ok(match marker {
            NUMBER => Value::Number(self.f64()?),
            BOOLEAN => Value::Boolean(self.u8()? != 0),
            STRING => {
                let len = usize::from(self.u16()?);
                Value::String(self.utf8(len)?)
            }
            LONG_STRING => {
                let len = self.u32()? as usize;
                Value::String(self.utf8(len)?)
            }
            OBJECT => Value::Object(self.properties(depth + 1)?),
            NULL => Value::Null,
            UNDEFINED => Value::Undefined,
            ECMA_ARRAY => {
                // The count is only a hint (encoders often write 0); the end marker rules.
                let _hint = self.u32()?;
                Value::EcmaArray(self.properties(depth + 1)?)
            }
            STRICT_ARRAY => Value::StrictArray(self.strict_array(depth + 1)?),
            DATE => {
                let millis = self.f64()?;
                let timezone = i16::from_be_bytes(self.array()?);
                Value::Date { millis, timezone }
            }
            OBJECT_END => return Err(Error::Amf0ObjectEnd),
            other => return Err(unsupported(other)),
        })
    }

    fn enter(&self, depth: usize) -> Result<(), Error> {
        if depth > self.limits.max_depth {
            return Err(Error::Amf0TooDeep(self.limits.max_depth));
        }
        Ok(())
    }

    fn properties(&mut self, depth: usize) -> Result<Object, Error> {
        self.enter(depth)?;
        let mut entries = Vec::new();
        loop {
            let key_len = usize::from(self.u16()?);
            if key_len == 0 {
                // An empty key is only legal as the first half of the end marker.
                if self.u8()? == OBJECT_END {
                    return Ok(Object(entries));
                }
                return Err(Error::Amf0ObjectEnd);
            }
            let key = self.utf8(key_len)?;
            let value = self.value(depth)?;
            entries.push((key, value));
        }
    }

    fn strict_array(&mut self, depth: usize) -> Result<Vec<Value>, Error> {
        self.enter(depth)?;
        let count = self.u32()? as usize;
        // Each element takes at least one byte and one unit of the value budget, so a count
        // beyond either cannot be honest; refusing it here also bounds the allocation.
        if count > self.remaining() {
            return Err(Error::Amf0Truncated);
        }
        if count > self.values_left {
            return Err(Error::Amf0TooManyValues(self.limits.max_values));
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(self.value(depth)?);
        }
        Ok(items)
    }
}

fn unsupported(marker: u8) -> Error {
    let name = match marker {
        0x04 => "movie clip",
        0x07 => "reference",
        0x0d => "unsupported",
        0x0e => "record set",
        0x0f => "XML document",
        0x10 => "typed object",
        0x11 => "AMF3 switch",
        _ => "unknown",
    };
    Error::Amf0Unsupported { marker, name }
}

/// Appends the encoding of `value` to `out`.
pub fn encode(value: &Value, out: &mut impl BufMut) -> Result<(), Error> {
    match value {
        Value::Number(n) => {
            out.put_u8(NUMBER);
            out.put_f64(*n);
        }
        Value::Boolean(b) => {
            out.put_u8(BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Value::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                out.put_u8(STRING);
                out.put_u16(len);
                out.put_slice(s.as_bytes());
            }
            Err(_) => {
                let len = u32::try_from(s.len()).map_err(|_| Error::Amf0TooLarge)?;
                out.put_u8(LONG_STRING);
                out.put_u32(len);
                out.put_slice(s.as_bytes());
            }
        },
        Value::Object(o) => {
            out.put_u8(OBJECT);
            encode_properties(o, out)?;
        }
        Value::Null => out.put_u8(NULL),
        Value::Undefined => out.put_u8(UNDEFINED),
        Value::EcmaArray(o) => {
            out.put_u8(ECMA_ARRAY);
            out.put_u32(u32::try_from(o.len()).map_err(|_| Error::Amf0TooLarge)?);
            encode_properties(o, out)?;
        }
        Value::StrictArray(items) => {
            out.put_u8(STRICT_ARRAY);
            out.put_u32(u32::try_from(items.len()).map_err(|_| Error::Amf0TooLarge)?);
            for item in items {
                encode(item, out)?;
            }
        }
        Value::Date { millis, timezone } => {
            out.put_u8(DATE);
            out.put_f64(*millis);
            out.put_i16(*timezone);
        }
    }
    Ok(())
}

/// Appends the encodings of `values`, one after the other.
pub fn encode_all<'v>(
    values: impl IntoIterator<Item = &'v Value>,
    out: &mut impl BufMut,
) -> Result<(), Error> {
    for v in values {
        encode(v, out)?;
    }
    Ok(())
}

fn encode_properties(o: &Object, out: &mut impl BufMut) -> Result<(), Error> {
    for (key, value) in o.iter() {
        // Keys have only the short form; an empty key would read back as the end marker.
        let len = u16::try_from(key.len()).map_err(|_| Error::Amf0TooLarge)?;
        if len == 0 {
            return Err(Error::Amf0ObjectEnd);
        }
        out.put_u16(len);
        out.put_slice(key.as_bytes());
        encode(value, out)?;
    }
    out.put_u16(0);
    out.put_u8(OBJECT_END);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode(v, &mut out).unwrap();
        out
    }

    fn dec(b: &[u8]) -> Result<Vec<Value>, Error> {
        decode_all(b, &Amf0Limits::default())
    }

    #[test]
    fn byte_vectors() {
        let cases: Vec<(Value, Vec<u8>)> = vec![
            (Value::Number(1.0), vec![0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]),
            (Value::Boolean(true), vec![1, 1]),
            (Value::string("ab"), vec![2, 0, 2, b'a', b'b']),
            (Value::Null, vec![5]),
            (Value::Undefined, vec![6]),
            (
                Value::Object(Object::new().with("a", Value::Null)),
                vec![3, 0, 1, b'a', 5, 0, 0, 9],
            ),
            (
                Value::EcmaArray(Object::new().with("a", Value::Boolean(false))),
                vec![8, 0, 0, 0, 1, 0, 1, b'a', 1, 0, 0, 0, 9],
            ),
            (
                Value::StrictArray(vec![Value::Null, Value::Undefined]),
                vec![0x0a, 0, 0, 0, 2, 5, 6],
            ),
            (
                Value::Date {
                    millis: 0.0,
                    timezone: 0,
                },
                vec![0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
        ];
        for (value, bytes) in cases {
            assert_eq!(enc(&value), bytes, "{value:?}");
            assert_eq!(dec(&bytes).unwrap(), vec![value]);
        }
    }

    #[test]
    fn long_string_both_ways() {
        let s = "x".repeat(70_000);
        let bytes = enc(&Value::string(s.clone()));
        assert_eq!(bytes[0], LONG_STRING);
        assert_eq!(&bytes[1..5], &70_000u32.to_be_bytes());
        let limits = Amf0Limits {
            max_string_len: 100_000,
            ..Default::default()
        };
        assert_eq!(decode_all(&bytes, &limits).unwrap(), vec![Value::String(s)]);
        // A short string sent in the long form reads back as a plain string.
        assert_eq!(
            dec(&[0x0c, 0, 0, 0, 1, b'z']).unwrap(),
            vec![Value::string("z")]
        );
    }

    #[test]
    fn key_order_and_duplicates_kept() {
        let o = Object::new()
            .with("z", Value::Number(1.0))
            .with("a", Value::Number(2.0))
            .with("z", Value::Number(3.0));
        let bytes = enc(&Value::Object(o.clone()));
        assert_eq!(dec(&bytes).unwrap(), vec![Value::Object(o)]);
    }

    #[test]
    fn refuses_references_and_typed_objects() {
        assert_eq!(
            dec(&[0x07, 0, 1]),
            Err(Error::Amf0Unsupported {
                marker: 7,
                name: "reference"
            })
        );
        assert_eq!(
            dec(&[0x10, 0, 1, b'T', 0, 0, 9]),
            Err(Error::Amf0Unsupported {
                marker: 0x10,
                name: "typed object"
            })
        );
        assert!(matches!(dec(&[0x11]), Err(Error::Amf0Unsupported { .. })));
        assert_eq!(dec(&[0x09]), Err(Error::Amf0ObjectEnd));
    }

    #[test]
    fn limits_hold() {
        let limits = Amf0Limits {
            max_string_len: 3,
            max_depth: 2,
            max_values: 5,
        };
        assert!(matches!(
            decode_all(&[2, 0, 4, b'a', b'b', b'c', b'd'], &limits),
            Err(Error::Amf0StringTooLong { len: 4, limit: 3 })
        ));
        // Three nested objects.
        let deep = [3, 0, 1, b'a', 3, 0, 1, b'b', 3, 0, 0, 9, 0, 0, 9, 0, 0, 9];
        assert_eq!(decode_all(&deep, &limits), Err(Error::Amf0TooDeep(2)));
        assert_eq!(
            decode_all(&[5; 6], &limits),
            Err(Error::Amf0TooManyValues(5))
        );
        // A strict array claiming 4 billion elements is refused before allocating.
        assert_eq!(
            dec(&[0x0a, 0xff, 0xff, 0xff, 0xff, 5]),
            Err(Error::Amf0Truncated)
        );
        // A long string claiming 4 GiB is refused by the string limit.
        assert!(matches!(
            dec(&[0x0c, 0xff, 0xff, 0xff, 0xff]),
            Err(Error::Amf0StringTooLong { .. })
        ));
    }

    #[test]
    fn truncation_and_bad_utf8() {
        assert_eq!(dec(&[0, 1, 2]), Err(Error::Amf0Truncated));
        assert_eq!(dec(&[3, 0, 1, b'a']), Err(Error::Amf0Truncated));
        assert_eq!(dec(&[2, 0, 1, 0xff]), Err(Error::Amf0Utf8));
        assert_eq!(dec(&[3, 0, 0, 5]), Err(Error::Amf0ObjectEnd));
    }

    pub(crate) fn arb_value() -> impl Strategy<Value = Value> {
        let key = "[a-zA-Z0-9_]{1,8}";
        let leaf = prop_oneof![
            any::<f64>()
                .prop_filter("NaN != NaN", |f| !f.is_nan())
                .prop_map(Value::Number),
            any::<bool>().prop_map(Value::Boolean),
            ".{0,20}".prop_map(Value::String),
            Just(Value::Null),
            Just(Value::Undefined),
            (any::<i32>(), any::<i16>()).prop_map(|(m, timezone)| Value::Date {
                millis: f64::from(m),
                timezone
            }),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec((key, inner.clone()), 0..6)
                    .prop_map(|v| Value::Object(Object(v))),
                prop::collection::vec((key, inner.clone()), 0..6)
                    .prop_map(|v| Value::EcmaArray(Object(v))),
                prop::collection::vec(inner, 0..6).prop_map(Value::StrictArray),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trip(values in prop::collection::vec(arb_value(), 0..4)) {
            let mut bytes = Vec::new();
            encode_all(&values, &mut bytes).unwrap();
            prop_assert_eq!(dec(&bytes).unwrap(), values);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = dec(&bytes);
        }
    }
}
