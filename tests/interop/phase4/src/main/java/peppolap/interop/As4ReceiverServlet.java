package peppolap.interop;

import com.helger.collection.commons.CommonsArrayList;
import com.helger.http.EHttpMethod;
import com.helger.phase4.crypto.IAS4CryptoFactory;
import com.helger.phase4.crypto.IAS4DecryptParameterModifier;
import com.helger.phase4.incoming.AS4RequestHandler;
import com.helger.phase4.incoming.crypto.AS4IncomingSecurityConfiguration;
import com.helger.phase4.servlet.AS4UnifiedResponse;
import com.helger.phase4.servlet.AS4XServletHandler;
import com.helger.phase4.servlet.IAS4ServletRequestHandlerCustomizer;
import com.helger.phase4.wss.AS4CertificateOnlySignatureTrustValidator;
import com.helger.web.scope.IRequestWebScopeWithoutResponse;
import com.helger.xservlet.AbstractXServlet;
import org.apache.wss4j.dom.WSConstants;
import org.apache.wss4j.dom.engine.WSSConfig;

/**
 * POST /as4: phase4-lib's AS4 servlet handler, with our in-memory crypto factory and our Peppol processor.
 * Like phase4's Peppol servlet it refuses signatures that are not backed by an X.509 certificate.
 */
public final class As4ReceiverServlet extends AbstractXServlet {
  private static final long serialVersionUID = 1L;

  public As4ReceiverServlet(IAS4CryptoFactory cryptoFactory, PeppolReceiverSPI processor) {
    // phase4 reads the MIME body itself; the servlet container must not consume it as multipart form data.
    settings().setMultipartEnabled(false);
    AS4XServletHandler handler = new AS4XServletHandler();
    handler.setRequestHandlerCustomizer(new IAS4ServletRequestHandlerCustomizer() {
      @Override
      public void customizeBeforeHandling(IRequestWebScopeWithoutResponse scope, AS4UnifiedResponse response,
          AS4RequestHandler requestHandler) {
        requestHandler.setCryptoFactory(cryptoFactory);
        requestHandler.setProcessorSupplier(() -> new CommonsArrayList<>(processor));
        AS4IncomingSecurityConfiguration security = AS4IncomingSecurityConfiguration.createDefaultInstance();
        security.setDecryptParameterModifier(new IAS4DecryptParameterModifier() {
          @Override
          public void modifyWSSConfig(WSSConfig config) {
            config.setValidator(WSConstants.SIGNATURE, new AS4CertificateOnlySignatureTrustValidator());
          }
        });
        requestHandler.setIncomingSecurityConfiguration(security);
      }

      @Override
      public void customizeAfterHandling(IRequestWebScopeWithoutResponse scope, AS4UnifiedResponse response,
          AS4RequestHandler requestHandler) {
        // nothing to undo: every request gets a fresh AS4RequestHandler
      }
    });
    handlerRegistry().registerHandler(EHttpMethod.POST, handler);
  }
}
