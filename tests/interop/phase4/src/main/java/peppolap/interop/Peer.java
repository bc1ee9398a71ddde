package peppolap.interop;

import com.helger.phase4.incoming.AS4ServerInitializer;
import com.helger.phase4.incoming.mgr.AS4ProfileSelector;
import com.helger.phase4.profile.peppol.AS4PeppolProfileRegistarSPI;
import com.helger.photon.io.WebFileIO;
import com.helger.web.scope.mgr.WebScopeManager;
import jakarta.servlet.ServletContextEvent;
import jakarta.servlet.ServletContextListener;
import jakarta.servlet.ServletRegistration;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import java.util.function.Supplier;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

/**
 * The phase4 interop peer: one long-lived JVM on 127.0.0.1 with a Peppol AS4 receiver (/as4), a send trigger
 * (/send) and control endpoints (/status, /inbox, /receiver). Usage: {@code Peer <peer.properties>}.
 * The first stdout line is {@code READY port=NNNN} once every endpoint accepts requests.
 */
public final class Peer {
  private Peer() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: Peer <peer.properties>");
      System.exit(2);
    }
    PeerConfig config = PeerConfig.load(Path.of(args[0]));
    // Never production: phase4 then rejects messages without a registered handler and tightens other checks.
    System.setProperty("global.production", "false");
    System.setProperty("phase4.manager.inmemory", "true");
    Files.createDirectories(config.dataDir());

    PeerCrypto crypto = new PeerCrypto(config);
    Inbox inbox = new Inbox(config.inboxDir());
    ReceiverSettings settings = new ReceiverSettings();
    PeppolReceiverSPI processor = new PeppolReceiverSPI(crypto.apCaChecker(), crypto.ownCertificate(), settings, inbox);

    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost(config.host());
    connector.setPort(config.port());
    server.addConnector(connector);

    ServletContextHandler context = new ServletContextHandler("/");
    context.addEventListener(new Phase4Lifecycle(config.dataDir(),
        () -> new As4ReceiverServlet(crypto.cryptoFactory(), processor)));
    context.addServlet(new ServletHolder(new SendServlet(crypto, config.dataDir().resolve("sent-responses"))), "/send");
    ServletHolder control = new ServletHolder(new ControlServlet(crypto, inbox, settings, phase4Version()));
    context.addServlet(control, "/status");
    context.addServlet(control, "/inbox");
    context.addServlet(control, "/receiver");
    server.setHandler(context);
    server.setStopAtShutdown(true);
    server.start();

    System.out.println("READY port=" + connector.getLocalPort());
    System.out.flush();
    server.join();
  }

  /**
   * Opens and closes phase4's global scope with the servlet context, as phase4's own web applications do.
   * The AS4 servlet is registered here because phase4's servlet base class needs the global scope when constructed.
   */
  private static final class Phase4Lifecycle implements ServletContextListener {
    private final Path dataDir;
    private final Supplier<As4ReceiverServlet> as4Servlet;

    Phase4Lifecycle(Path dataDir, Supplier<As4ReceiverServlet> as4Servlet) {
      this.dataDir = dataDir;
      this.as4Servlet = as4Servlet;
    }

    @Override
    public void contextInitialized(ServletContextEvent event) {
      WebScopeManager.onGlobalBegin(event.getServletContext());
      WebFileIO.initPaths(dataDir.toFile(), dataDir.toString(), false);
      // Without a default profile phase4 resolves no Peppol PMode and skips the Peppol profile validation.
      AS4ProfileSelector.setCustomDefaultAS4ProfileID(AS4PeppolProfileRegistarSPI.AS4_PROFILE_ID);
      AS4ServerInitializer.initAS4Server();
      ServletRegistration.Dynamic as4 = event.getServletContext().addServlet("as4", as4Servlet.get());
      as4.addMapping("/as4");
      as4.setLoadOnStartup(1);
    }

    @Override
    public void contextDestroyed(ServletContextEvent event) {
      AS4ServerInitializer.shutdownAS4Server();
      WebFileIO.resetPaths();
      WebScopeManager.onGlobalEnd();
    }
  }

  private static String phase4Version() throws IOException {
    Properties p = new Properties();
    String resource = "/META-INF/maven/com.helger.phase4/phase4-lib/pom.properties";
    try (InputStream in = Peer.class.getResourceAsStream(resource)) {
      if (in == null) {
        return "unknown";
      }
      p.load(in);
    }
    return p.getProperty("version", "unknown");
  }
}
