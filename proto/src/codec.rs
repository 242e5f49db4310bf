//! The gRPC codec of `omnigate.v1`: prost's, except for what a message
//! that cannot be decoded becomes.
//!
//! tonic's prost codec turns every decode error into `INTERNAL`, as the
//! gRPC status-code guide suggests for a peer that sends garbage. For a
//! server that is the wrong answer: a request that is malformed or nested
//! past prost's recursion limit (100 levels; each level of a `Value` list
//! or map counts two) is the client's mistake and gets `INVALID_ARGUMENT`
//! saying so. A response the client cannot decode stays `INTERNAL`.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::{Code, Status};
use tonic_prost::{ProstCodec, ProstEncoder};

/// Which status a message that cannot be decoded gets: each request type
/// of the API says `INVALID_ARGUMENT`, each response type `INTERNAL`.
pub trait DecodeFailure {
    /// The status code of a decode failure of this message.
    const CODE: Code;
}

macro_rules! decode_failure {
    ($code:ident: $($message:ident),* $(,)?) => {
        $(impl DecodeFailure for crate::v1::$message {
            const CODE: Code = Code::$code;
        })*
    };
}

decode_failure!(
    InvalidArgument: ExecuteRequest, ExecuteBatchRequest, ListEnginesRequest, DescribeRequest,
    BeginRequest, CommitRequest, RollbackRequest, ListTransactionsRequest,
    ResolveTransactionRequest, DrainEngineRequest, ResumeEngineRequest,
);
decode_failure!(
    Internal: ExecuteResponse, ExecuteBatchResponse, ListEnginesResponse, DescribeResponse,
    BeginResponse, CommitResponse, RollbackResponse, ListTransactionsResponse,
    ResolveTransactionResponse, DrainEngineResponse, ResumeEngineResponse,
);

/// prost's encoding, with decode failures by [`DecodeFailure`].
#[derive(Debug, Clone)]
pub struct OmnigateCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for OmnigateCodec<T, U> {
    fn default() -> Self {
        OmnigateCodec { _pd: PhantomData }
    }
}

impl<T, U> Codec for OmnigateCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + DecodeFailure + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = OmnigateDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        OmnigateDecoder { _pd: PhantomData }
    }
}

/// Decodes `U` with prost; a failure gets `U`'s [`DecodeFailure::CODE`].
#[derive(Debug, Clone)]
pub struct OmnigateDecoder<U> {
    _pd: PhantomData<U>,
}

impl<U: Message + Default + DecodeFailure> Decoder for OmnigateDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|e| {
            Status::new(
                U::CODE,
                format!(
                    "the message could not be decoded: {e} (messages may nest at most 100 \
                     levels, and each level of a Value list or map counts two)"
                ),
            )
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}
