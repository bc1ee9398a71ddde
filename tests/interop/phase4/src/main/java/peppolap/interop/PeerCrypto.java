package peppolap.interop;

import com.helger.phase4.crypto.AS4CryptoFactoryInMemoryKeyStore;
import com.helger.security.certificate.TrustedCAChecker;
import com.helger.security.revocation.CertificateRevocationCheckerDefaults;
import com.helger.security.revocation.ERevocationCheckMode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;

/** Key material and trust of the peer: our own AP key, the test AP CA(s) and the WSS4J trust store. */
public final class PeerCrypto {
  private final KeyStore keyStore;
  private final String alias;
  private final char[] password;
  private final KeyStore trustStore;
  private final X509Certificate ownCertificate;
  private final List<X509Certificate> apCas;
  private final X509Certificate smpCa;

  public PeerCrypto(PeerConfig config) throws IOException, GeneralSecurityException {
    keyStore = KeyStore.getInstance("PKCS12");
    try (InputStream in = Files.newInputStream(config.keystorePath())) {
      keyStore.load(in, config.keystorePassword());
    }
    alias = config.keystoreAlias().isEmpty() ? onlyKeyAlias(keyStore, config.keystorePath()) : config.keystoreAlias();
    if (!keyStore.isKeyEntry(alias)) {
      throw new GeneralSecurityException(
          "keystore " + config.keystorePath() + " has no private key under alias '" + alias + "'");
    }
    password = config.keystorePassword();
    ownCertificate = (X509Certificate) keyStore.getCertificate(alias);
    apCas = new ArrayList<>();
    for (Path pem : config.apCaPems()) {
      apCas.addAll(readPem(pem));
    }
    // Built from PEM files so the harness decides exactly which CAs are trusted (never the JDK's cacerts nor the
    // real Peppol CAs), and so that no keytool step is needed for certificate-only PKCS#12 files.
    trustStore = KeyStore.getInstance("PKCS12");
    trustStore.load(null, null);
    int n = 0;
    for (X509Certificate ca : apCas) {
      trustStore.setCertificateEntry("ap-ca-" + n++, ca);
    }
    for (Path pem : config.trustPems()) {
      for (X509Certificate cert : readPem(pem)) {
        trustStore.setCertificateEntry("trust-" + n++, cert);
      }
    }
    smpCa = config.smpCaPem() == null ? null : readPem(config.smpCaPem()).get(0);
    // Test certificates carry no CRL/OCSP pointers; phase4's default (CRL, hard fail) would reject them all.
    // The global default covers the code paths that do not take the checker's own mode.
    CertificateRevocationCheckerDefaults.setRevocationCheckMode(ERevocationCheckMode.NONE);
  }

  public AS4CryptoFactoryInMemoryKeyStore cryptoFactory() {
    return new AS4CryptoFactoryInMemoryKeyStore(keyStore, alias, password, trustStore);
  }

  /** Checker for peer AP certificates: issued by one of our test AP CAs (never the real Peppol CAs), no revocation. */
  public TrustedCAChecker apCaChecker() {
    return new TrustedCAChecker(ERevocationCheckMode.NONE,
        CertificateRevocationCheckerDefaults.DEFAULT_REVOCATION_CHECK_CACHING_DURATION, 1000,
        apCas.toArray(new X509Certificate[0]));
  }

  public X509Certificate ownCertificate() {
    return ownCertificate;
  }

  /** Seat ID = CN of our own AP certificate, which phase4 uses as From PartyId. */
  public String seatId() {
    return commonName(ownCertificate);
  }

  public KeyStore smpTrustStore() throws GeneralSecurityException, IOException {
    if (smpCa == null) {
      throw new GeneralSecurityException("no SMP CA configured (smp.ca.pem) but an SMP lookup was requested");
    }
    KeyStore ks = KeyStore.getInstance("PKCS12");
    ks.load(null, null);
    ks.setCertificateEntry("smp-ca", smpCa);
    return ks;
  }

  public static List<X509Certificate> readPem(Path pem) throws IOException, GeneralSecurityException {
    try (InputStream in = Files.newInputStream(pem)) {
      return parsePem(in, pem.toString());
    }
  }

  public static List<X509Certificate> parsePem(InputStream in, String what) throws GeneralSecurityException {
    List<X509Certificate> out = new ArrayList<>();
    try {
      for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
        out.add((X509Certificate) c);
      }
    } catch (CertificateException e) {
      throw new CertificateException(what + " is not a PEM X.509 certificate: " + e.getMessage(), e);
    }
    if (out.isEmpty()) {
      throw new GeneralSecurityException(what + " contains no PEM certificate");
    }
    return out;
  }

  public static String commonName(X509Certificate cert) {
    try {
      for (Rdn rdn : new LdapName(cert.getSubjectX500Principal().getName()).getRdns()) {
        if (rdn.getType().equalsIgnoreCase("CN")) {
          return rdn.getValue().toString();
        }
      }
    } catch (InvalidNameException e) {
      throw new IllegalArgumentException("unparsable subject " + cert.getSubjectX500Principal(), e);
    }
    throw new IllegalArgumentException("certificate " + cert.getSubjectX500Principal() + " has no CN");
  }

  private static String onlyKeyAlias(KeyStore ks, Path path) throws GeneralSecurityException {
    List<String> keys = new ArrayList<>();
    for (String a : Collections.list(ks.aliases())) {
      if (ks.isKeyEntry(a)) {
        keys.add(a);
      }
    }
    if (keys.size() != 1) {
      throw new GeneralSecurityException("keystore " + path + " holds " + keys.size()
          + " private keys " + keys + "; set keystore.alias");
    }
    return keys.get(0);
  }
}
