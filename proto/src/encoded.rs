//! `ExecuteResponse` and `ExecuteBatchResponse` as the server sends them:
//! encoded already, by the gRPC front end straight from the gateway's
//! rows (see `omnigate-frontends`' `grpc/reply.rs`), and copied into the
//! gRPC frame as they are. Building the generated message first would
//! take an allocation per row and per text or bytes cell, only to be
//! walked and dropped again.
//!
//! The service's server uses this type for `Execute`, `ExecuteStream` and
//! `ExecuteBatch` replies; its client, and every other message, use the
//! generated ones. The bytes are the same on the wire: a client decodes
//! them as the generated
//! [`ExecuteResponse`](crate::v1::ExecuteResponse) or
//! [`ExecuteBatchResponse`](crate::v1::ExecuteBatchResponse).

use prost::bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};

/// A reply message, held as its encoded fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodedReply {
    fields: BytesMut,
}

impl EncodedReply {
    /// A reply of `fields`: its message's encoding (without a length
    /// delimiter).
    pub fn from_encoded(fields: BytesMut) -> Self {
        EncodedReply { fields }
    }

    /// Its encoding (without a length delimiter).
    pub fn encoded(&self) -> &[u8] {
        &self.fields
    }
}

impl Message for EncodedReply {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.fields);
    }

    /// Keeps each field it decodes, written again in prost's (minimal)
    /// form; groups, which no field of omnigate.v1 is, are skipped. The
    /// fields' contents are not checked (the server only encodes this
    /// type; clients decode the generated messages).
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let out = &mut self.fields;
        // prost's own decoders check each value (and say what is wrong).
        match wire_type {
            WireType::Varint => {
                let value = encoding::decode_varint(buf)?;
                encoding::encode_key(tag, wire_type, out);
                encoding::encode_varint(value, out);
            }
            WireType::SixtyFourBit => {
                let mut value = 0u64;
                encoding::fixed64::merge(wire_type, &mut value, buf, ctx)?;
                encoding::encode_key(tag, wire_type, out);
                out.put_u64_le(value);
            }
            WireType::ThirtyTwoBit => {
                let mut value = 0u32;
                encoding::fixed32::merge(wire_type, &mut value, buf, ctx)?;
                encoding::encode_key(tag, wire_type, out);
                out.put_u32_le(value);
            }
            WireType::LengthDelimited => {
                let mut value = Bytes::new();
                encoding::bytes::merge(wire_type, &mut value, buf, ctx)?;
                encoding::bytes::encode(tag, &value, out);
            }
            // Groups (proto2 only): no field of omnigate.v1 is one.
            WireType::StartGroup | WireType::EndGroup => {
                encoding::skip_field(wire_type, tag, buf, ctx)?;
            }
        }
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.fields.len()
    }

    fn clear(&mut self) {
        self.fields.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1 as pb;

    fn response() -> pb::ExecuteResponse {
        pb::ExecuteResponse {
            columns: vec![pb::Column {
                name: "id".into(),
                type_name: "int8".into(),
            }],
            rows: vec![pb::Row {
                values: vec![
                    pb::Value {
                        kind: Some(pb::value::Kind::Int(-7)),
                    },
                    pb::Value {
                        kind: Some(pb::value::Kind::Float(1.5)),
                    },
                    pb::Value {
                        kind: Some(pb::value::Kind::String("é".into())),
                    },
                ],
            }],
            rows_affected: 3,
            engine: "pg".into(),
        }
    }

    #[test]
    fn a_reply_writes_its_fields_and_decodes_as_the_generated_message() {
        let bytes = response().encode_to_vec();
        let reply = EncodedReply::from_encoded(BytesMut::from(&bytes[..]));
        assert_eq!(reply.encode_to_vec(), bytes);
        assert_eq!(reply.encoded_len(), bytes.len());
        assert_eq!(
            pb::ExecuteResponse::decode(&reply.encode_to_vec()[..]).unwrap(),
            response()
        );
    }

    #[test]
    fn decoding_keeps_every_field_as_encoded() {
        let bytes = response().encode_to_vec();
        let decoded = EncodedReply::decode(&bytes[..]).unwrap();
        assert_eq!(decoded.encoded(), &bytes[..]);
        // A field cut short is an error, not a shorter reply.
        assert!(EncodedReply::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
