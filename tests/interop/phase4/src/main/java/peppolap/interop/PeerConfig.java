package peppolap.interop;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

/**
 * The peer's start-up configuration, read from a Java properties file written by the Python harness.
 * Every missing mandatory key is reported by name so a broken harness fails with an actionable message.
 */
public record PeerConfig(
    String host,
    int port,
    Path keystorePath,
    char[] keystorePassword,
    String keystoreAlias,
    List<Path> apCaPems,
    List<Path> trustPems,
    Path smpCaPem,
    Path inboxDir,
    Path dataDir) {

  public static PeerConfig load(Path file) throws IOException {
    Properties p = new Properties();
    try (InputStream in = Files.newInputStream(file)) {
      p.load(in);
    }
    String smpCa = p.getProperty("smp.ca.pem", "").trim();
    return new PeerConfig(
        p.getProperty("host", "127.0.0.1"),
        Integer.parseInt(p.getProperty("port", "0")),
        Path.of(required(p, "keystore.path", file)),
        required(p, "keystore.password", file).toCharArray(),
        p.getProperty("keystore.alias", "").trim(),
        paths(required(p, "ap.ca.pem", file)),
        paths(p.getProperty("trust.pem", "")),
        smpCa.isEmpty() ? null : Path.of(smpCa),
        Path.of(required(p, "inbox.dir", file)),
        Path.of(required(p, "data.dir", file)));
  }

  private static String required(Properties p, String key, Path file) {
    String value = p.getProperty(key);
    if (value == null || value.isBlank()) {
      throw new IllegalArgumentException("peer config " + file + ": key '" + key + "' is missing or empty");
    }
    return value.trim();
  }

  /** Comma-separated list of PEM files; blank entries are ignored. */
  private static List<Path> paths(String csv) {
    List<Path> out = new ArrayList<>();
    for (String part : csv.split(",")) {
      if (!part.isBlank()) {
        out.add(Path.of(part.trim()));
      }
    }
    return out;
  }
}
