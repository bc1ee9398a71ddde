package peppolap.interop;

import com.helger.smpclient.peppol.SMPClientReadOnly;

/**
 * Receiver behaviour that tests switch at run time through POST /receiver, so one long-lived JVM serves
 * positive and negative scenarios.
 */
public final class ReceiverSettings {
  /** When set, the business handler throws with this text, as a failing back end would (EBMS:0004). */
  private volatile String handlerFailure;
  /** When set, every message's receiver is looked up in this SMP (phase4's "receiver check"). */
  private volatile SMPClientReadOnly smpClient;
  /** Our own endpoint URL; the SMP endpoint must contain it, as phase4's receiver check demands. */
  private volatile String ownEndpointUrl;

  public String handlerFailure() {
    return handlerFailure;
  }

  public void handlerFailure(String text) {
    handlerFailure = text == null || text.isBlank() ? null : text;
  }

  public SMPClientReadOnly smpClient() {
    return smpClient;
  }

  public String ownEndpointUrl() {
    return ownEndpointUrl;
  }

  public synchronized void receiverCheck(SMPClientReadOnly client, String endpointUrl) {
    smpClient = client;
    ownEndpointUrl = endpointUrl;
  }
}
