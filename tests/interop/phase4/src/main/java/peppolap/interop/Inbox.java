package peppolap.interop;

import com.helger.json.IJsonObject;
import com.helger.json.JsonArray;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * What the peer's receiver accepted: one SBD file plus a JSON sidecar per message, and an in-memory list for
 * GET /inbox.
 * Files are written to a temporary name and moved, so a reader never sees half a document.
 */
public final class Inbox {
  private final Path dir;
  private final List<IJsonObject> entries = new ArrayList<>();

  public Inbox(Path dir) throws IOException {
    this.dir = Files.createDirectories(dir);
  }

  /** Stores the SBD and its sidecar; returns the sidecar (with the SBD's path added). */
  public synchronized IJsonObject record(String messageId, byte[] sbd, IJsonObject sidecar) throws IOException {
    String stem = String.format("%04d-%s", entries.size() + 1, safe(messageId));
    Path sbdPath = dir.resolve(stem + ".sbd.xml");
    writeAtomically(sbdPath, sbd);
    sidecar.add("sbdPath", sbdPath.toString());
    sidecar.add("sbdSize", sbd.length);
    writeAtomically(dir.resolve(stem + ".json"), sidecar.getAsJsonString().getBytes(StandardCharsets.UTF_8));
    entries.add(sidecar);
    return sidecar;
  }

  /** Keeps the signal phase4 answered with (receipt or error), to compare with what the sender got. */
  public synchronized Path recordResponse(String incomingMessageId, byte[] response) throws IOException {
    Path path = dir.resolve("responses").resolve(safe(incomingMessageId) + "-" + System.nanoTime() + ".xml");
    Files.createDirectories(path.getParent());
    writeAtomically(path, response);
    for (IJsonObject e : entries) {
      if (incomingMessageId.equals(e.getAsString("messageId"))) {
        e.add("responsePath", path.toString());
      }
    }
    return path;
  }

  public synchronized JsonArray list() {
    JsonArray out = new JsonArray();
    for (IJsonObject e : entries) {
      out.add(e.getClone());
    }
    return out;
  }

  private static void writeAtomically(Path target, byte[] data) throws IOException {
    Path tmp = target.resolveSibling(target.getFileName() + ".tmp");
    Files.write(tmp, data);
    Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  /** Message IDs are sender-chosen text; keep them out of path syntax. */
  static String safe(String id) {
    String s = id == null ? "no-id" : id.replaceAll("[^A-Za-z0-9._-]", "_");
    return s.length() > 80 ? s.substring(0, 80) : s;
  }
}
