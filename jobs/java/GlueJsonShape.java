/*
 * Glue's per-value typing of JSON lines, in the JVM (a Spark SQL UDF, see jobs/glue/inference.py).
 *
 * call(line) returns the line's shape: the Glue type of every value of the record, as a compact text
 * the Python side parses and merges (gluetypes.mergeDataTypes). Spark groups the lines by shape, so the
 * driver merges a few distinct shapes instead of typing every record in Python.
 *
 *   s string, i int (32-bit), l long (64-bit), d double (fractions, exponents, integers beyond 64 bits),
 *   b boolean, n null, {"key":T,...} an object (keys as JSON strings, in order of first appearance; a
 *   duplicate key keeps its first position and its last value, as Python's json does),
 *   [T|U|...] an array (its elements' distinct shapes, in order of first appearance; [] when empty).
 *
 * A line that is not one JSON object gives "!" (malformed, or a scalar), "A" (a top-level array, whose
 * elements are records: the Python reader handles those), and a blank line gives null. Parsing is
 * strict like Spark's JSON options in inference.py: no comments, single quotes, NaN, leading zeros or
 * unescaped control characters; what follows the object on its line is ignored, as Spark's reader does.
 */
package lakeforge.glue;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import org.apache.spark.sql.api.java.UDF1;

public class GlueJsonShape implements UDF1<String, String> {
    private static final long serialVersionUID = 1L;
    static final JsonFactory FACTORY = new JsonFactory();

    @Override
    public String call(String line) {
        if (line == null || isBlank(line)) {
            return null;
        }
        try (JsonParser parser = FACTORY.createParser(line)) {
            JsonToken token = parser.nextToken();
            if (token == JsonToken.START_ARRAY) {
                return "A";
            }
            if (token != JsonToken.START_OBJECT) {
                return "!";
            }
            StringBuilder out = new StringBuilder(64);
            object(parser, out);
            return out.toString(); // what follows the object is ignored, as Spark's JSON reader does
        } catch (IOException | RuntimeException e) {
            return "!";
        }
    }

    static boolean isBlank(String line) {
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != 0x0B) {
                return false;
            }
        }
        return true;
    }

    private static void value(JsonParser parser, JsonToken token, StringBuilder out) throws IOException {
        switch (token) {
            case START_OBJECT:
                object(parser, out);
                break;
            case START_ARRAY:
                array(parser, out);
                break;
            case VALUE_STRING:
                out.append('s');
                break;
            case VALUE_NUMBER_INT:
                switch (parser.getNumberType()) {
                    case INT:
                        out.append('i');
                        break;
                    case LONG:
                        out.append('l');
                        break;
                    default:
                        out.append('d');
                }
                break;
            case VALUE_NUMBER_FLOAT:
                out.append('d');
                break;
            case VALUE_TRUE:
            case VALUE_FALSE:
                out.append('b');
                break;
            case VALUE_NULL:
                out.append('n');
                break;
            default:
                throw new IOException("unexpected token " + token);
        }
    }

    /**
     * An object, the parser on its START_OBJECT. A repeated key keeps its first position and takes its
     * last value (the earlier value's shape is replaced in place).
     */
    private static void object(JsonParser parser, StringBuilder out) throws IOException {
        out.append('{');
        HashMap<String, Integer> index = null;
        ArrayList<int[]> ranges = null;
        JsonToken token;
        while ((token = parser.nextToken()) == JsonToken.FIELD_NAME) {
            String name = parser.getCurrentName();
            if (index == null) {
                index = new HashMap<>();
                ranges = new ArrayList<>();
            }
            Integer earlier = index.get(name);
            if (earlier != null) {
                StringBuilder shape = new StringBuilder();
                value(parser, parser.nextToken(), shape);
                int[] range = ranges.get(earlier);
                out.replace(range[0], range[1], shape.toString());
                int delta = shape.length() - (range[1] - range[0]);
                range[1] += delta;
                for (int j = earlier + 1; j < ranges.size(); j++) {
                    ranges.get(j)[0] += delta;
                    ranges.get(j)[1] += delta;
                }
                continue;
            }
            if (!ranges.isEmpty()) {
                out.append(',');
            }
            quote(name, out);
            out.append(':');
            int begin = out.length();
            value(parser, parser.nextToken(), out);
            index.put(name, ranges.size());
            ranges.add(new int[] {begin, out.length()});
        }
        if (token != JsonToken.END_OBJECT) {
            throw new IOException("unterminated object");
        }
        out.append('}');
    }

    private static void array(JsonParser parser, StringBuilder out) throws IOException {
        LinkedHashSet<String> elements = null;
        String only = null;
        JsonToken token;
        while ((token = parser.nextToken()) != JsonToken.END_ARRAY) {
            if (token == null) {
                throw new IOException("unterminated array");
            }
            StringBuilder sub = new StringBuilder();
            value(parser, token, sub);
            String shape = sub.toString();
            if (only == null) {
                only = shape;
            } else if (!only.equals(shape)) {
                if (elements == null) {
                    elements = new LinkedHashSet<>();
                    elements.add(only);
                }
                elements.add(shape);
            }
        }
        out.append('[');
        if (elements != null) {
            out.append(String.join("|", elements));
        } else if (only != null) {
            out.append(only);
        }
        out.append(']');
    }

    static void quote(String text, StringBuilder out) {
        out.append('"');
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        out.append('"');
    }
}
