package peppolap.interop;

import com.helger.base.state.ETriState;
import com.helger.collection.commons.ICommonsList;
import com.helger.http.header.HttpHeaderMap;
import com.helger.json.IJsonObject;
import com.helger.json.JsonObject;
import com.helger.peppol.sbdh.PeppolSBDHData;
import com.helger.peppol.sbdh.PeppolSBDHDataReadException;
import com.helger.peppol.sbdh.PeppolSBDHDataReader;
import com.helger.peppol.smp.ESMPTransportProfile;
import com.helger.peppolid.IParticipantIdentifier;
import com.helger.peppolid.peppol.PeppolIdentifierHelper;
import com.helger.phase4.attachment.WSS4JAttachment;
import com.helger.phase4.ebms3header.Ebms3PartyId;
import com.helger.phase4.ebms3header.Ebms3Property;
import com.helger.phase4.ebms3header.Ebms3SignalMessage;
import com.helger.phase4.ebms3header.Ebms3UserMessage;
import com.helger.phase4.error.AS4ErrorList;
import com.helger.phase4.incoming.IAS4IncomingMessageMetadata;
import com.helger.phase4.incoming.IAS4IncomingMessageState;
import com.helger.phase4.incoming.spi.AS4MessageProcessorResult;
import com.helger.phase4.incoming.spi.AS4SignalMessageProcessorResult;
import com.helger.phase4.incoming.spi.IAS4IncomingMessageProcessorSPI;
import com.helger.phase4.model.error.EEbmsError;
import com.helger.phase4.model.pmode.IPMode;
import com.helger.phase4.peppol.Phase4PeppolSender;
import com.helger.security.certificate.ECertificateCheckResult;
import com.helger.security.certificate.TrustedCAChecker;
import com.helger.security.revocation.ERevocationCheckMode;
import com.helger.smpclient.peppol.SMPClientReadOnly;
import com.helger.xsds.peppol.smp1.EndpointType;
import com.helger.xsds.peppol.smp1.SignedServiceMetadataType;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.security.cert.X509Certificate;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Locale;
import org.apache.wss4j.dom.str.STRParser;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.w3c.dom.Node;

/**
 * The Peppol part of the receiver. phase4-lib does MIME, WS-Security (decrypt + verify against our trust store),
 * the Peppol PMode/profile validation and duplicate detection; this processor adds the checks that phase4's
 * phase4-peppol-servlet module performs, which is not available from the Maven repository this project can reach.
 * Each check below follows phase4's documented behaviour and error codes (see shared/docs/as4.md section 5).
 */
public final class PeppolReceiverSPI implements IAS4IncomingMessageProcessorSPI {
  private static final Logger LOG = LoggerFactory.getLogger(PeppolReceiverSPI.class);
  private static final String NOT_SERVICED = "PEPPOL:NOT_SERVICED";

  private final TrustedCAChecker apCaChecker;
  private final X509Certificate ownCertificate;
  private final ReceiverSettings settings;
  private final Inbox inbox;

  public PeppolReceiverSPI(TrustedCAChecker apCaChecker, X509Certificate ownCertificate, ReceiverSettings settings,
      Inbox inbox) {
    this.apCaChecker = apCaChecker;
    this.ownCertificate = ownCertificate;
    this.settings = settings;
    this.inbox = inbox;
  }

  /** A rejection: the ebMS error to answer with. */
  private static final class Rejection extends Exception {
    private static final long serialVersionUID = 1L;
    final EEbmsError error;
    final String detail;

    Rejection(EEbmsError error, String detail) {
      super(detail);
      this.error = error;
      this.detail = detail;
    }
  }

  @Override
  public AS4MessageProcessorResult processAS4UserMessage(IAS4IncomingMessageMetadata metadata, HttpHeaderMap headers,
      Ebms3UserMessage userMessage, IPMode pmode, Node payload, ICommonsList<WSS4JAttachment> attachments,
      IAS4IncomingMessageState state, AS4ErrorList errors) {
    String messageId = userMessage.getMessageInfo().getMessageId();
    Locale locale = state.getLocale();
    try {
      checkSecurity(state);
      byte[] sbd = firstAttachment(attachments);
      PeppolSBDHData data = readSbdh(sbd);
      checkHeaderAgainstSbdh(userMessage, data);
      checkReceiverServiced(data);
      String failure = settings.handlerFailure();
      if (failure != null) {
        // phase4 turns any exception of an incoming-SBD handler into EBMS:0004; the test asked for exactly that.
        throw new Rejection(EEbmsError.EBMS_OTHER, "The incoming SBD handler failed: " + failure);
      }
      inbox.record(messageId, sbd, sidecar(userMessage, data, state));
      return AS4MessageProcessorResult.createSuccess();
    } catch (Rejection r) {
      LOG.warn("Rejecting AS4 message {}: {} {}", messageId, r.error.getErrorCode(), r.detail);
      errors.add(r.error.errorBuilder(locale).refToMessageInError(messageId).errorDetail(r.detail)
          .description(r.detail, locale).build());
      return AS4MessageProcessorResult.createFailure();
    } catch (Exception e) {
      LOG.error("Failed to store AS4 message {}", messageId, e);
      errors.add(EEbmsError.EBMS_OTHER.errorBuilder(locale).refToMessageInError(messageId)
          .errorDetail("Receiver failed to store the message: " + e).build());
      return AS4MessageProcessorResult.createFailure();
    }
  }

  /** Peppol requires signed and encrypted messages, the signer as BinarySecurityToken, issued by the AP CA. */
  private void checkSecurity(IAS4IncomingMessageState state) throws Rejection {
    if (!state.isSoapDecrypted()) {
      throw new Rejection(EEbmsError.EBMS_FAILED_DECRYPTION, "The AS4 message was not encrypted");
    }
    if (!state.isSoapSignatureChecked()) {
      throw new Rejection(EEbmsError.EBMS_FAILED_AUTHENTICATION, "The AS4 message was not signed");
    }
    if (state.getSigningCertificateReferenceType() != STRParser.REFERENCE_TYPE.DIRECT_REF) {
      throw new Rejection(EEbmsError.EBMS_POLICY_NONCOMPLIANCE,
          "The signing certificate must be referenced as BinarySecurityToken, not "
              + state.getSigningCertificateReferenceType());
    }
    X509Certificate signer = state.getSigningCertificate();
    // Per-call mode NONE with caching off: test certificates have no revocation pointers (documented choice).
    ECertificateCheckResult result = apCaChecker.checkCertificate(signer, OffsetDateTime.now(), ETriState.FALSE,
        ERevocationCheckMode.NONE);
    if (!result.isValid()) {
      throw new Rejection(EEbmsError.EBMS_FAILED_AUTHENTICATION, "The signing certificate "
          + signer.getSubjectX500Principal() + " is not a valid AP certificate: " + result.getReason());
    }
  }

  private static byte[] firstAttachment(ICommonsList<WSS4JAttachment> attachments) throws Exception {
    if (attachments == null || attachments.isEmpty()) {
      throw new Rejection(EEbmsError.EBMS_OTHER, "The AS4 message contains no attachment; Peppol needs the SBD as one");
    }
    // phase4-lib has already decrypted and (per the PartInfo CompressionType) gunzipped the attachment stream.
    try (InputStream in = attachments.get(0).getSourceStream()) {
      return in.readAllBytes();
    }
  }

  private static PeppolSBDHData readSbdh(byte[] sbd) throws Rejection {
    try {
      // Value checks and the mandatory COUNTRY_C1 are the reader's defaults.
      return new PeppolSBDHDataReader(Phase4PeppolSender.IF).extractData(new ByteArrayInputStream(sbd));
    } catch (PeppolSBDHDataReadException e) {
      throw new Rejection(EEbmsError.EBMS_OTHER, "Failed to extract the Peppol data from SBDH: " + e.getMessage());
    }
  }

  /** originalSender/finalRecipient must equal the SBDH sender/receiver; From/To must be seat IDs. */
  private static void checkHeaderAgainstSbdh(Ebms3UserMessage um, PeppolSBDHData data) throws Rejection {
    compareParticipant(um, "originalSender", data.getSenderAsIdentifier());
    compareParticipant(um, "finalRecipient", data.getReceiverAsIdentifier());
    checkSeatId("From", um.getPartyInfo().getFrom().getPartyId());
    checkSeatId("To", um.getPartyInfo().getTo().getPartyId());
  }

  private static void compareParticipant(Ebms3UserMessage um, String name, IParticipantIdentifier fromSbdh)
      throws Rejection {
    Ebms3Property prop = null;
    if (um.getMessageProperties() != null) {
      for (Ebms3Property p : um.getMessageProperties().getProperty()) {
        if (name.equals(p.getName())) {
          prop = p;
        }
      }
    }
    if (prop == null || prop.getType() == null || prop.getValue() == null) {
      throw new Rejection(EEbmsError.EBMS_OTHER, "The AS4 message property '" + name + "' is missing or has no type");
    }
    IParticipantIdentifier fromHeader =
        Phase4PeppolSender.IF.createParticipantIdentifier(prop.getType(), prop.getValue());
    if (fromHeader == null || !fromHeader.hasSameContent(fromSbdh)) {
      throw new Rejection(EEbmsError.EBMS_OTHER, "The AS4 message property '" + name + "' (" + prop.getType() + "::"
          + prop.getValue() + ") differs from the SBDH value " + fromSbdh.getURIEncoded());
    }
  }

  private static void checkSeatId(String side, List<Ebms3PartyId> ids) throws Rejection {
    if (ids.size() != 1 || !ids.get(0).getValue().matches(PeppolIdentifierHelper.REGEX_SEAT_ID)) {
      throw new Rejection(EEbmsError.EBMS_OTHER, "The " + side + " PartyId must be exactly one Peppol seat ID, got "
          + ids.stream().map(Ebms3PartyId::getValue).toList());
    }
  }

  /** phase4's receiver check: the SMP must list our endpoint (URL and certificate) for this receiver and document. */
  private void checkReceiverServiced(PeppolSBDHData data) throws Rejection {
    SMPClientReadOnly smp = settings.smpClient();
    if (smp == null) {
      return;
    }
    EndpointType endpoint;
    try {
      SignedServiceMetadataType ssm = smp.getServiceMetadataOrNull(data.getReceiverAsIdentifier(),
          data.getDocumentTypeAsIdentifier());
      endpoint = ssm == null ? null : SMPClientReadOnly.getEndpoint(ssm, data.getProcessAsIdentifier(),
          ESMPTransportProfile.TRANSPORT_PROFILE_PEPPOL_AS4_V2);
    } catch (Exception e) {
      throw new Rejection(EEbmsError.EBMS_OTHER, "SMP lookup of the receiver failed: " + e);
    }
    if (endpoint == null) {
      throw new Rejection(EEbmsError.EBMS_OTHER, NOT_SERVICED);
    }
    String url = SMPClientReadOnly.getEndpointAddress(endpoint);
    X509Certificate cert;
    try {
      cert = SMPClientReadOnly.getEndpointCertificate(endpoint);
    } catch (Exception e) {
      throw new Rejection(EEbmsError.EBMS_OTHER, "The SMP endpoint certificate is unreadable: " + e);
    }
    // phase4 compares the URL with "contains" and the certificate by serial number only; so do we.
    if (url == null || !url.contains(settings.ownEndpointUrl()) || cert == null
        || !cert.getSerialNumber().equals(ownCertificate.getSerialNumber())) {
      throw new Rejection(EEbmsError.EBMS_OTHER,
          "The addressing data contained in the SBDH could not be verified: SMP endpoint " + url);
    }
  }

  private static IJsonObject sidecar(Ebms3UserMessage um, PeppolSBDHData data, IAS4IncomingMessageState state) {
    JsonObject j = new JsonObject();
    j.add("messageId", um.getMessageInfo().getMessageId());
    j.add("conversationId", um.getCollaborationInfo().getConversationId());
    j.add("fromPartyId", um.getPartyInfo().getFrom().getPartyId().get(0).getValue());
    j.add("toPartyId", um.getPartyInfo().getTo().getPartyId().get(0).getValue());
    j.add("action", um.getCollaborationInfo().getAction());
    j.add("service", um.getCollaborationInfo().getService().getValue());
    j.add("sender", data.getSenderURIEncoded());
    j.add("receiver", data.getReceiverURIEncoded());
    j.add("documentType", data.getDocumentTypeURIEncoded());
    j.add("process", data.getProcessURIEncoded());
    j.add("countryC1", data.getCountryC1());
    j.add("instanceIdentifier", data.getInstanceIdentifier());
    j.add("signingCertSubject", state.getSigningCertificate().getSubjectX500Principal().getName());
    j.add("receivedAt", OffsetDateTime.now().toString());
    return j;
  }

  @Override
  public AS4SignalMessageProcessorResult processAS4SignalMessage(IAS4IncomingMessageMetadata metadata,
      HttpHeaderMap headers, Ebms3SignalMessage signal, IPMode pmode, IAS4IncomingMessageState state,
      AS4ErrorList errors) {
    // Peppol is push-only; a stray signal is acknowledged like phase4's Peppol processor does.
    return AS4SignalMessageProcessorResult.createSuccess();
  }

  @Override
  public void processAS4ResponseMessage(IAS4IncomingMessageMetadata metadata, IAS4IncomingMessageState state,
      String responseMessageId, byte[] responseBytes, boolean responsePayloadIsAvailable, AS4ErrorList errors) {
    if (responsePayloadIsAvailable && responseBytes != null && state.getMessageID() != null) {
      try {
        inbox.recordResponse(state.getMessageID(), responseBytes);
      } catch (Exception e) {
        LOG.error("Could not keep the response to {}", state.getMessageID(), e);
      }
    }
  }
}
