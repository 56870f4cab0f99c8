/*
 * The JSON type of the values at given paths of a JSON line, in the JVM (a Spark SQL UDF, see
 * jobs/glue/inference.py): what Spark's own JSON parser cannot tell, since it reads a number and a string
 * holding the same digits into the same text. The DynamicFrame reader parses records with Spark's parser
 * (choice fields as raw text) and picks each choice's branch from these kinds.
 *
 * call(line, paths): paths is a JSON array of paths, each an array of object keys (["user", "id"]); the
 * result has one character per path: s string, i int, l long, d double, b boolean, { object, [ array,
 * n null or absent. A line that is not one JSON object gives "!" followed by the parser's message, and
 * a blank line null, exactly as GlueJsonShape decides (the same parser, the same strictness). A
 * repeated key takes its last value.
 */
package lakeforge.glue;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import org.apache.spark.sql.api.java.UDF2;

public class GlueJsonKinds implements UDF2<String, String, String> {
    private static final long serialVersionUID = 1L;

    /** A trie of the requested paths: a node is a path end (index >= 0) and/or has children. */
    private static final class Node {
        int index = -1;
        final Map<String, Node> children = new HashMap<>();
        final List<Integer> below = new ArrayList<>();
    }

    /** The compiled paths of one spec. */
    private static final class Compiled {
        final Node root;
        final int width;

        Compiled(Node root, int width) {
            this.root = root;
            this.width = width;
        }
    }

    /** Compiled specs, shared by every call site and thread of the JVM (a spec is a few paths). */
    private static final ConcurrentHashMap<String, Compiled> COMPILED = new ConcurrentHashMap<>();

    @Override
    public String call(String line, String paths) throws IOException {
        if (line == null || GlueJsonShape.isBlank(line)) {
            return null;
        }
        Compiled compiled = COMPILED.get(paths);
        if (compiled == null) {
            if (COMPILED.size() > 1000) {
                COMPILED.clear();
            }
            compiled = compile(paths);
            COMPILED.put(paths, compiled);
        }
        char[] kinds = new char[compiled.width];
        Arrays.fill(kinds, 'n');
        try (JsonParser parser = GlueJsonShape.FACTORY.createParser(line)) {
            JsonToken first = parser.nextToken();
            if (first != JsonToken.START_OBJECT) {
                return "!not a JSON object (got " + tokenName(first) + ")";
            }
            object(parser, compiled.root, kinds); // what follows the object is ignored, as in GlueJsonShape
        } catch (JsonProcessingException e) {
            return "!" + e.getOriginalMessage();
        } catch (IOException | RuntimeException e) {
            return "!" + e;
        }
        return new String(kinds);
    }

    private static Compiled compile(String paths) throws IOException {
        Node top = new Node();
        int count = 0;
        try (JsonParser parser = GlueJsonShape.FACTORY.createParser(paths)) {
            if (parser.nextToken() != JsonToken.START_ARRAY) {
                throw new IOException("paths must be a JSON array of arrays of keys: " + paths);
            }
            while (parser.nextToken() == JsonToken.START_ARRAY) {
                Node node = top;
                List<Node> trail = new ArrayList<>();
                while (parser.nextToken() == JsonToken.VALUE_STRING) {
                    node = node.children.computeIfAbsent(parser.getText(), k -> new Node());
                    trail.add(node);
                }
                node.index = count;
                for (Node step : trail) {
                    step.below.add(count);
                }
                count++;
            }
        }
        return new Compiled(top, count);
    }

    private static void object(JsonParser parser, Node node, char[] kinds) throws IOException {
        JsonToken token;
        while ((token = parser.nextToken()) == JsonToken.FIELD_NAME) {
            Node child = node.children.get(parser.getCurrentName());
            JsonToken value = parser.nextToken();
            if (child == null) {
                parser.skipChildren();
                continue;
            }
            for (int i : child.below) {
                kinds[i] = 'n'; // a repeated key: the last value decides
            }
            if (child.index >= 0) {
                kinds[child.index] = kind(parser, value);
            }
            if (value == JsonToken.START_OBJECT && !child.children.isEmpty()) {
                object(parser, child, kinds);
            } else {
                parser.skipChildren();
            }
        }
        if (token != JsonToken.END_OBJECT) {
            throw new IOException("unterminated object");
        }
    }

    private static String tokenName(JsonToken token) {
        if (token == null) {
            return "nothing";
        }
        switch (token) {
            case START_ARRAY:
                return "list";
            case VALUE_STRING:
                return "str";
            case VALUE_NUMBER_INT:
                return "int";
            case VALUE_NUMBER_FLOAT:
                return "float";
            case VALUE_TRUE:
            case VALUE_FALSE:
                return "bool";
            case VALUE_NULL:
                return "null";
            default:
                return token.asString() == null ? token.name() : token.asString();
        }
    }

    private static char kind(JsonParser parser, JsonToken token) throws IOException {
        switch (token) {
            case START_OBJECT:
                return '{';
            case START_ARRAY:
                return '[';
            case VALUE_STRING:
                return 's';
            case VALUE_NUMBER_INT:
                switch (parser.getNumberType()) {
                    case INT:
                        return 'i';
                    case LONG:
                        return 'l';
                    default:
                        return 'd';
                }
            case VALUE_NUMBER_FLOAT:
                return 'd';
            case VALUE_TRUE:
            case VALUE_FALSE:
                return 'b';
            case VALUE_NULL:
                return 'n';
            default:
                throw new IOException("unexpected token " + token);
        }
    }
}
