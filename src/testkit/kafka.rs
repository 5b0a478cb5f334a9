//! A minimal Kafka client for tests and benchmarks: framed requests and responses over TCP or
//! TLS, built on the `kafka-protocol` codecs, with the SASL/OAUTHBEARER exchange and record
//! batches for produce.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// What went wrong talking to a broker or gateway.
#[derive(Debug, thiserror::Error)]
pub enum KafkaClientError {
    /// The connection failed or was closed (a gateway refusing a client closes it).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A message could not be encoded or decoded.
    #[error("codec: {0}")]
    Codec(String),
    /// The response answers another request.
    #[error("correlation id {got}, expected {expected}")]
    Correlation {
        /// Received.
        got: i32,
        /// Sent.
        expected: i32,
    },
}

impl KafkaClientError {
    /// Whether the peer closed the connection (end of file or reset).
    pub fn is_closed(&self) -> bool {
        matches!(self, KafkaClientError::Io(e) if matches!(
            e.kind(),
            std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionAborted
        ))
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One Kafka connection.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kafka_protocol::messages::MetadataRequest;
/// use poolgate::testkit::kafka::KafkaClient;
/// let mut client = KafkaClient::connect("127.0.0.1:9092").await?;
/// let metadata = client.call(12, MetadataRequest::default()).await?;
/// println!("{} brokers", metadata.brokers.len());
/// # Ok(()) }
/// ```
pub struct KafkaClient {
    stream: Box<dyn Stream>,
    next_correlation: i32,
    client_id: StrBytes,
}

impl std::fmt::Debug for KafkaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaClient")
            .field("next_correlation", &self.next_correlation)
            .finish_non_exhaustive()
    }
}

fn codec(e: impl std::fmt::Display) -> KafkaClientError {
    KafkaClientError::Codec(e.to_string())
}

impl KafkaClient {
    /// Connects over plain TCP.
    ///
    /// # Errors
    /// When the connection fails.
    pub async fn connect(addr: &str) -> Result<KafkaClient, KafkaClientError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(KafkaClient::over(Box::new(tcp)))
    }

    /// Connects over TLS, trusting only `root` (a DER certificate) for `server_name`.
    ///
    /// # Errors
    /// When the connection or the TLS handshake fails.
    pub async fn connect_tls(
        addr: &str,
        server_name: &str,
        root: &[u8],
    ) -> Result<KafkaClient, KafkaClientError> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(root.to_vec()))
            .map_err(codec)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(codec)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name =
            rustls::pki_types::ServerName::try_from(server_name.to_owned()).map_err(codec)?;
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let tls = connector.connect(name, tcp).await?;
        Ok(KafkaClient::over(Box::new(tls)))
    }

    fn over(stream: Box<dyn Stream>) -> KafkaClient {
        KafkaClient {
            stream,
            next_correlation: 1,
            client_id: StrBytes::from_static_str("poolgate-testkit"),
        }
    }

    /// Sends a request without waiting for its response; returns its correlation id.
    ///
    /// # Errors
    /// Encoding or I/O errors.
    pub async fn send<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<i32, KafkaClientError> {
        let correlation_id = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = correlation_id;
        header.client_id = Some(self.client_id.clone());
        let mut out = BytesMut::with_capacity(256);
        out.put_i32(0);
        header
            .encode(&mut out, R::header_version(version))
            .map_err(codec)?;
        request.encode(&mut out, version).map_err(codec)?;
        let len = i32::try_from(out.len() - 4).map_err(codec)?;
        out[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&out).await?;
        self.stream.flush().await?;
        Ok(correlation_id)
    }

    /// Receives the response to the request of type `R` sent with `version`.
    ///
    /// # Errors
    /// Decoding or I/O errors; [`KafkaClientError::is_closed`] when the peer closed.
    pub async fn recv<R: Request>(
        &mut self,
        version: i16,
    ) -> Result<(i32, R::Response), KafkaClientError> {
        let payload = self.recv_frame().await?;
        let mut body = payload;
        let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .map_err(codec)?;
        let response = R::Response::decode(&mut body, version).map_err(codec)?;
        Ok((header.correlation_id, response))
    }

    /// Receives one raw frame (without its length prefix).
    ///
    /// # Errors
    /// I/O errors; a frame over 256 MiB.
    pub async fn recv_frame(&mut self) -> Result<Bytes, KafkaClientError> {
        let len = self.stream.read_i32().await?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n <= 256 << 20)
            .ok_or_else(|| codec(format!("frame length {len}")))?;
        let mut buf = BytesMut::zeroed(len);
        self.stream.read_exact(&mut buf).await?;
        Ok(buf.freeze())
    }

    /// Sends a request and waits for its response.
    ///
    /// # Errors
    /// Encoding, decoding or I/O errors, or a response to another request.
    pub async fn call<R: Request>(
        &mut self,
        version: i16,
        request: R,
    ) -> Result<R::Response, KafkaClientError> {
        let expected = self.send(version, &request).await?;
        let (got, response) = self.recv::<R>(version).await?;
        if got != expected {
            return Err(KafkaClientError::Correlation { got, expected });
        }
        Ok(response)
    }

    /// Writes raw bytes (for sending garbage).
    ///
    /// # Errors
    /// I/O errors.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), KafkaClientError> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Waits until the peer closes the connection, discarding anything it sends; returns the
    /// bytes discarded.
    ///
    /// # Errors
    /// I/O errors other than a reset.
    pub async fn read_to_close(&mut self) -> Result<usize, KafkaClientError> {
        let mut total = 0;
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf).await {
                Ok(0) => return Ok(total),
                Ok(n) => total += n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(total),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// SaslHandshake v1 for OAUTHBEARER, then SaslAuthenticate v2 with `client_first_message`.
    /// Returns the SaslAuthenticate response: error code 0 and empty bytes on success, error
    /// code 0 with the RFC 7628 error challenge on failure.
    ///
    /// # Errors
    /// I/O or codec errors, or a handshake the server refused.
    pub async fn sasl_oauthbearer(
        &mut self,
        client_first_message: &[u8],
    ) -> Result<SaslAuthenticateResponse, KafkaClientError> {
        let mut handshake = SaslHandshakeRequest::default();
        handshake.mechanism = StrBytes::from_static_str("OAUTHBEARER");
        let resp: SaslHandshakeResponse = self.call(1, handshake).await?;
        if resp.error_code != 0 {
            return Err(codec(format!("SaslHandshake error {}", resp.error_code)));
        }
        self.sasl_authenticate(client_first_message).await
    }

    /// One SaslAuthenticate v2 round trip.
    ///
    /// # Errors
    /// I/O or codec errors.
    pub async fn sasl_authenticate(
        &mut self,
        auth_bytes: &[u8],
    ) -> Result<SaslAuthenticateResponse, KafkaClientError> {
        let mut auth = SaslAuthenticateRequest::default();
        auth.auth_bytes = Bytes::copy_from_slice(auth_bytes);
        self.call(2, auth).await
    }
}

/// An uncompressed record batch (magic 2) of `(key, value)` records: one batch, as a producer
/// writes it (Produce v3+ takes exactly one per partition).
///
/// # Panics
/// Never for in-memory encoding of well-formed records.
pub fn record_batch(records: &[(Option<&[u8]>, &[u8])]) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::try_from(i).unwrap_or(0),
            // No producer id, so the batch's base sequence is -1 (none). kafka-protocol reads
            // a record's sequence as the base plus its offset delta, and keeps records in one
            // batch only while that holds: -1 for every record made one batch per record,
            // which Apache Kafka refuses (INVALID_RECORD: one batch per partition).
            sequence: i32::try_from(i).unwrap_or(0) - 1,
            timestamp: 0,
            key: key.map(Bytes::copy_from_slice),
            value: Some(Bytes::copy_from_slice(value)),
            headers: Default::default(),
        })
        .collect();
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    #[expect(
        clippy::expect_used,
        reason = "encoding an uncompressed batch into memory cannot fail"
    )]
    RecordBatchEncoder::encode(&mut out, &records, &options)
        .expect("an uncompressed batch always encodes");
    out.freeze()
}

/// The API key of a request type, for matching ApiVersions entries.
pub fn api_key<R: Request>() -> Option<ApiKey> {
    ApiKey::try_from(R::KEY).ok()
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::RecordBatchDecoder;

    use super::record_batch;

    #[test]
    fn records_make_one_batch_as_a_produce_request_needs() {
        let mut bytes = record_batch(&[(None, b"a"), (Some(b"k"), b"b"), (None, b"c")]);
        let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap();
        assert_eq!(sets.len(), 1, "one batch");
        let records = &sets[0].records;
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![0, 1, 2]);
        assert!(records.iter().all(|r| r.producer_id == -1));
        assert_eq!(records[1].key.as_deref(), Some(&b"k"[..]));
    }
}
