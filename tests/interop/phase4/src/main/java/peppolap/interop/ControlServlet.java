package peppolap.interop;

import com.helger.json.IJsonObject;
import com.helger.json.JsonObject;
import com.helger.smpclient.peppol.SMPClientReadOnly;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.net.URI;

/** GET /status (readiness), GET /inbox (what was received), POST /receiver (switch receiver behaviour). */
public final class ControlServlet extends HttpServlet {
  private static final long serialVersionUID = 1L;
  private final PeerCrypto crypto;
  private final Inbox inbox;
  private final ReceiverSettings settings;
  private final String phase4Version;

  public ControlServlet(PeerCrypto crypto, Inbox inbox, ReceiverSettings settings, String phase4Version) {
    this.crypto = crypto;
    this.inbox = inbox;
    this.settings = settings;
    this.phase4Version = phase4Version;
  }

  @Override
  protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
    switch (req.getServletPath()) {
      case "/status" -> Json.write(resp, 200, status());
      case "/inbox" -> Json.write(resp, 200, inbox.list());
      default -> resp.sendError(404);
    }
  }

  /**
   * Body: {"handlerFailure": text or null, "smpUrl": url or null, "ownEndpointUrl": url}. A null/absent smpUrl turns
   * the receiver check off (the default); a handlerFailure makes every following message fail with EBMS:0004.
   */
  @Override
  protected void doPost(HttpServletRequest req, HttpServletResponse resp) throws IOException {
    if (!"/receiver".equals(req.getServletPath())) {
      resp.sendError(404);
      return;
    }
    try {
      IJsonObject in = Json.readObject(req);
      String smpUrl = in.getAsString("smpUrl");
      if (smpUrl == null || smpUrl.isBlank()) {
        settings.receiverCheck(null, null);
      } else {
        SMPClientReadOnly client = new SMPClientReadOnly(URI.create(smpUrl)).setTrustStore(crypto.smpTrustStore());
        settings.receiverCheck(client, Json.required(in, "ownEndpointUrl"));
      }
      settings.handlerFailure(in.getAsString("handlerFailure"));
      Json.write(resp, 200, status());
    } catch (Exception e) {
      JsonObject err = new JsonObject();
      err.add("error", "bad /receiver request: " + e.getMessage());
      Json.write(resp, 400, err);
    }
  }

  private JsonObject status() {
    JsonObject j = new JsonObject();
    j.add("status", "ok");
    j.add("phase4Version", phase4Version);
    j.add("seatId", crypto.seatId());
    j.add("receiverCheck", settings.smpClient() != null);
    j.add("handlerFailure", settings.handlerFailure());
    return j;
  }
}
