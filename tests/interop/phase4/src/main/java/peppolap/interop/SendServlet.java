package peppolap.interop;

import com.helger.json.IJsonObject;
import com.helger.json.JsonArray;
import com.helger.json.JsonObject;
import com.helger.peppolid.IDocumentTypeIdentifier;
import com.helger.peppolid.IParticipantIdentifier;
import com.helger.peppolid.IProcessIdentifier;
import com.helger.phase4.client.IAS4ClientBuildMessageCallback;
import com.helger.phase4.ebms3header.Ebms3Error;
import com.helger.phase4.ebms3header.Ebms3SignalMessage;
import com.helger.phase4.messaging.http.HttpRetrySettings;
import com.helger.phase4.model.message.AS4UserMessage;
import com.helger.phase4.model.message.AbstractAS4Message;
import com.helger.phase4.peppol.Phase4PeppolSender;
import com.helger.phase4.sender.EAS4UserMessageSendResult;
import com.helger.phase4.sender.IAS4SignalMessageValidationResultHandler;
import com.helger.smpclient.peppol.SMPClientReadOnly;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.concurrent.atomic.AtomicLong;
import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Element;

/**
 * POST /send: makes phase4 send one document and reports phase4's own verdict on the answer as JSON.
 * phase4 counts a receipt as SUCCESS even when its signature was absent or its non-repudiation references do not
 * match (it only logs that), so the verdicts are captured from its callbacks and returned for the test to assert.
 */
public final class SendServlet extends HttpServlet {
  private static final long serialVersionUID = 1L;
  private final PeerCrypto crypto;
  private final Path responseDir;
  private final AtomicLong counter = new AtomicLong();

  public SendServlet(PeerCrypto crypto, Path responseDir) throws IOException {
    this.crypto = crypto;
    this.responseDir = Files.createDirectories(responseDir);
  }

  /** Everything phase4 told us about one send; filled by its callbacks on the request thread. */
  private static final class Outcome {
    String messageId;
    boolean signalReceived;
    boolean signatureChecked;
    String signingCertSubject;
    boolean receipt;
    String refToMessageId;
    final JsonArray ebmsErrors = new JsonArray();
    String nrrVerdict = "none";
    String nrrText;
    String responsePath;
    Integer httpStatus;
    String exception;
  }

  @Override
  protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
    IJsonObject in;
    Element payload;
    try {
      in = Json.readObject(req);
      payload = payload(in);
    } catch (Exception e) {
      JsonObject err = new JsonObject();
      err.add("error", "bad /send request: " + e.getMessage());
      Json.write(resp, 400, err);
      return;
    }
    long started = System.nanoTime();
    Outcome out = new Outcome();
    String result;
    try {
      result = send(in, payload, out).name();
    } catch (Exception e) {
      // Sending raised instead of returning a verdict (bad certificate PEM, invalid identifier, ...): say so.
      result = "PEER_ERROR";
      out.exception = describe(e);
    }
    Json.write(resp, 200, toJson(result, out, (System.nanoTime() - started) / 1_000_000));
  }

  private EAS4UserMessageSendResult send(IJsonObject in, Element payload, Outcome out) throws Exception {
    Phase4PeppolSender.PeppolUserMessageBuilder b = Phase4PeppolSender.builder()
        .cryptoFactory(crypto.cryptoFactory())
        .senderPartyID(crypto.seatId())
        .senderParticipantID(participant(Json.required(in, "sender")))
        .receiverParticipantID(participant(Json.required(in, "receiver")))
        .documentTypeID(documentType(Json.required(in, "documentType")))
        .processID(process(Json.required(in, "process")))
        .countryC1(Json.required(in, "countryC1"))
        .payload(payload)
        // The peer must never trust the real Peppol CAs: only our test AP CA(s), no revocation (no CRL/OCSP here).
        .peppolAP_CAChecker(crypto.apCaChecker())
        // Tests want phase4's first answer; the Peppol PMode would otherwise retry after 10 s.
        .httpRetrySettings(new HttpRetrySettings().setMaxRetries(0))
        .buildMessageCallback(new IAS4ClientBuildMessageCallback() {
          @Override
          public void onAS4Message(AbstractAS4Message<?> message) {
            // getMessagingID() is only the wsu:Id of eb:Messaging; the ebMS MessageId is in the UserMessage.
            if (message instanceof AS4UserMessage um) {
              out.messageId = um.getEbms3UserMessage().getMessageInfo().getMessageId();
            }
          }
        })
        .rawResponseConsumer(sent -> {
          out.httpStatus = sent.hasResponseStatusLine() ? sent.getResponseStatusLine().getStatusCode() : null;
          if (sent.hasResponseContent()) {
            Path p = responseDir.resolve(String.format("%04d-%s.xml", counter.incrementAndGet(),
                Inbox.safe(sent.getMessageID())));
            try {
              Files.write(p, sent.getResponseContent());
            } catch (IOException e) {
              throw new IllegalStateException("cannot save the raw response to " + p, e);
            }
            out.responsePath = p.toString();
          }
        })
        .signalMsgConsumer((signal, metadata, state) -> recordSignal(signal, state.isSoapSignatureChecked(),
            state.getSigningCertificate(), out))
        .signalMsgValidationResultHdl(new IAS4SignalMessageValidationResultHandler() {
          @Override
          public void onSuccess() {
            out.nrrVerdict = "onSuccess";
          }

          @Override
          public void onError(String text) {
            out.nrrVerdict = "onError";
            out.nrrText = text;
          }

          @Override
          public void onNotApplicable() {
            out.nrrVerdict = "onNotApplicable";
          }
        });
    String messageId = in.getAsString("messageId");
    if (messageId != null && !messageId.isBlank()) {
      b.messageID(messageId);
    }
    // Re-sending the same business document under a new AS4 MessageId keeps the SBDH InstanceIdentifier.
    String instanceId = in.getAsString("sbdhInstanceIdentifier");
    if (instanceId != null && !instanceId.isBlank()) {
      b.sbdhInstanceIdentifier(instanceId);
    }
    String endpointUrl = in.getAsString("endpointUrl");
    String smpUrl = in.getAsString("smpUrl");
    if (endpointUrl != null && !endpointUrl.isBlank()) {
      b.receiverEndpointDetails(certificate(Json.required(in, "receiverCertPem")), endpointUrl);
    } else if (smpUrl != null && !smpUrl.isBlank()) {
      b.smpClient(new SMPClientReadOnly(URI.create(smpUrl)).setTrustStore(crypto.smpTrustStore()));
    } else {
      throw new IllegalArgumentException("give either endpointUrl + receiverCertPem, or smpUrl");
    }
    return b.sendMessageAndCheckForReceipt(e -> out.exception = describe(e));
  }

  private static void recordSignal(Ebms3SignalMessage signal, boolean signatureChecked, X509Certificate signer,
      Outcome out) {
    out.signalReceived = true;
    out.signatureChecked = signatureChecked;
    out.signingCertSubject = signer == null ? null : signer.getSubjectX500Principal().getName();
    out.receipt = signal.getReceipt() != null;
    out.refToMessageId = signal.getMessageInfo() == null ? null : signal.getMessageInfo().getRefToMessageId();
    for (Ebms3Error e : signal.getError()) {
      JsonObject j = new JsonObject();
      j.add("code", e.getErrorCode());
      j.add("severity", e.getSeverity());
      j.add("shortDescription", e.getShortDescription());
      j.add("detail", e.getErrorDetail());
      j.add("description", e.getDescription() == null ? null : e.getDescription().getValue());
      out.ebmsErrors.add(j);
    }
  }

  private static JsonObject toJson(String result, Outcome out, long millis) {
    JsonObject j = new JsonObject();
    j.add("result", result);
    j.add("messageId", out.messageId);
    j.add("signalReceived", out.signalReceived);
    j.add("signatureChecked", out.signatureChecked);
    j.add("signingCertSubject", out.signingCertSubject);
    j.add("receipt", out.receipt);
    j.add("refToMessageId", out.refToMessageId);
    j.add("nrr", out.nrrVerdict);
    j.add("nrrText", out.nrrText);
    j.add("ebmsErrors", out.ebmsErrors);
    j.add("httpStatus", out.httpStatus);
    j.add("responsePath", out.responsePath);
    j.add("exception", out.exception);
    j.add("durationMs", millis);
    return j;
  }

  private static String describe(Throwable e) {
    StringBuilder sb = new StringBuilder(e.toString());
    for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
      sb.append(" <- ").append(c);
    }
    return sb.toString();
  }

  /** The payload must be namespaced XML (phase4 derives the SBDH Standard from the root namespace). */
  private static Element payload(IJsonObject in) throws Exception {
    String path = in.getAsString("payloadPath");
    String xml = in.getAsString("payloadXml");
    DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
    f.setNamespaceAware(true);
    f.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
    f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
    try (InputStream stream = path != null && !path.isBlank() ? Files.newInputStream(Path.of(path))
        : xml != null ? new ByteArrayInputStream(xml.getBytes(StandardCharsets.UTF_8)) : null) {
      if (stream == null) {
        throw new IllegalArgumentException("give payloadPath or payloadXml");
      }
      return f.newDocumentBuilder().parse(stream).getDocumentElement();
    }
  }

  private static X509Certificate certificate(String pem) throws Exception {
    return PeerCrypto.parsePem(new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII)), "receiverCertPem")
        .get(0);
  }

  /**
   * Index of the "::" after an identifier scheme, or -1 for a bare value. Schemes contain no ':' while values such as
   * document types do ("urn:...:Invoice-2::Invoice##..."), so only a colon-free prefix counts as a scheme.
   */
  private static int schemeEnd(String id) {
    int sep = id.indexOf("::");
    return sep > 0 && id.lastIndexOf(':', sep - 1) < 0 ? sep : -1;
  }

  /** Accepts "scheme::value" or a bare value with the Peppol default scheme. */
  private static IParticipantIdentifier participant(String id) {
    int sep = schemeEnd(id);
    IParticipantIdentifier p = sep < 0 ? Phase4PeppolSender.IF.createParticipantIdentifierWithDefaultScheme(id)
        : Phase4PeppolSender.IF.createParticipantIdentifier(id.substring(0, sep), id.substring(sep + 2));
    if (p == null) {
      throw new IllegalArgumentException("'" + id + "' is not a valid Peppol participant identifier");
    }
    return p;
  }

  private static IDocumentTypeIdentifier documentType(String id) {
    int sep = schemeEnd(id);
    IDocumentTypeIdentifier d = sep < 0 ? Phase4PeppolSender.IF.createDocumentTypeIdentifierWithDefaultScheme(id)
        : Phase4PeppolSender.IF.createDocumentTypeIdentifier(id.substring(0, sep), id.substring(sep + 2));
    if (d == null) {
      throw new IllegalArgumentException("'" + id + "' is not a valid Peppol document type identifier");
    }
    return d;
  }

  private static IProcessIdentifier process(String id) {
    int sep = schemeEnd(id);
    IProcessIdentifier p = sep < 0 ? Phase4PeppolSender.IF.createProcessIdentifierWithDefaultScheme(id)
        : Phase4PeppolSender.IF.createProcessIdentifier(id.substring(0, sep), id.substring(sep + 2));
    if (p == null) {
      throw new IllegalArgumentException("'" + id + "' is not a valid Peppol process identifier");
    }
    return p;
  }
}
