package peppolap.interop;

import com.helger.json.IJson;
import com.helger.json.IJsonObject;
import com.helger.json.serialize.JsonReader;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/** Reading JSON request bodies and writing JSON answers for the control endpoints. */
final class Json {
  private Json() {}

  static IJsonObject readObject(HttpServletRequest req) throws IOException {
    String body = new String(req.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    IJson json = JsonReader.readFromString(body);
    if (json == null || !json.isObject()) {
      throw new IllegalArgumentException("request body must be a JSON object");
    }
    return json.getAsObject();
  }

  static void write(HttpServletResponse resp, int status, IJson json) throws IOException {
    byte[] bytes = json.getAsJsonString().getBytes(StandardCharsets.UTF_8);
    resp.setStatus(status);
    resp.setContentType("application/json");
    resp.setContentLength(bytes.length);
    resp.getOutputStream().write(bytes);
  }

  static String required(IJsonObject o, String key) {
    String v = o.getAsString(key);
    if (v == null || v.isBlank()) {
      throw new IllegalArgumentException("JSON field '" + key + "' is required");
    }
    return v;
  }
}
