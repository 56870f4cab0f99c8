/*
 * lakeforge's object store for Spark: s3://bucket/key (also s3a://, s3n://) is <root>/bucket/key on the
 * local disk. There is no S3 service and no hadoop-aws jar on the machines this project runs on; this
 * FileSystem gives Spark, Iceberg's HadoopFileIO and Hadoop's FileContext (through LakeS3Fs) the same
 * s3:// URIs the catalog and the job arguments use.
 *
 * Root directory, first found wins:
 *   1. Hadoop configuration  fs.lakeforge.root       (GlueContext sets it from lakeforge's settings)
 *   2. JVM system property   lakeforge.s3.root       (GlueContext sets it too, for configurations captured
 *                                                     before it ran, e.g. the Iceberg catalog's)
 *   3. environment           LAKEFORGE_S3_ROOT       (spark-env.sh written by setup defaults it to <repo>/.lake/s3)
 *   4. environment           LAKEFORGE_HOME + "/s3"
 *
 * Object-store semantics kept on purpose:
 *   - a created file becomes visible when its stream is closed (written to a hidden temporary file in the
 *     same directory, then moved into place atomically), as an S3 object does;
 *   - append is not supported (as on S3A);
 *   - there are no permissions or owners (setPermission/setOwner are no-ops, statuses report the JVM user);
 *   - parent "directories" of a created file or a rename target are created as needed.
 * Paths it returns keep the scheme and bucket they were asked with.
 */
package lakeforge.fs;

import java.io.EOFException;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Paths;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.UUID;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.BufferedFSInputStream;
import org.apache.hadoop.fs.CreateFlag;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FSInputStream;
import org.apache.hadoop.fs.FileAlreadyExistsException;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.ParentNotDirectoryException;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.PathIsNotEmptyDirectoryException;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.util.Progressable;

public class LakeS3FileSystem extends FileSystem {
    public static final String ROOT_KEY = "fs.lakeforge.root";
    public static final String ROOT_PROPERTY = "lakeforge.s3.root";
    public static final String BLOCK_SIZE_KEY = "fs.lakeforge.block.size";
    /** Prefix of the hidden files that hold an object while it is being written. */
    public static final String TEMP_PREFIX = ".lakeforge-tmp-";

    private static final FsPermission FILE_PERMISSION = new FsPermission((short) 0644);
    private static final FsPermission DIR_PERMISSION = new FsPermission((short) 0755);

    private URI uri;
    private String bucket;
    private java.nio.file.Path root;
    private java.nio.file.Path bucketDir;
    private Path workingDir;
    private long blockSize;
    private String user;

    /** The object-store root this configuration resolves to (see the class comment). */
    public static java.nio.file.Path resolveRoot(Configuration conf) throws IOException {
        String root = conf == null ? null : conf.getTrimmed(ROOT_KEY);
        String source = ROOT_KEY;
        if (isBlank(root)) {
            root = System.getProperty(ROOT_PROPERTY);
            source = "system property " + ROOT_PROPERTY;
        }
        if (isBlank(root)) {
            root = System.getenv("LAKEFORGE_S3_ROOT");
            source = "LAKEFORGE_S3_ROOT";
        }
        if (isBlank(root) && !isBlank(System.getenv("LAKEFORGE_HOME"))) {
            root = System.getenv("LAKEFORGE_HOME") + "/s3";
            source = "LAKEFORGE_HOME";
        }
        if (isBlank(root)) {
            throw new IOException("lakeforge object store: no root directory for s3:// paths. Set the Hadoop option "
                + ROOT_KEY + " (spark.hadoop." + ROOT_KEY + "), or LAKEFORGE_S3_ROOT / LAKEFORGE_HOME, or run setup "
                + "(.ci/setup), which writes the default into Spark's spark-env.sh");
        }
        if (root.startsWith("file:")) {
            root = URI.create(root).getPath();
        }
        java.nio.file.Path path = Paths.get(root);
        if (!path.isAbsolute()) {
            throw new IOException("lakeforge object store: root " + root + " (from " + source + ") is not absolute");
        }
        return path.normalize();
    }

    private static boolean isBlank(String s) {
        return s == null || s.trim().isEmpty();
    }

    @Override
    public void initialize(URI name, Configuration conf) throws IOException {
        super.initialize(name, conf);
        setConf(conf);
        String scheme = name.getScheme() == null ? "s3" : name.getScheme().toLowerCase(Locale.ROOT);
        bucket = name.getHost() != null ? name.getHost() : name.getAuthority();
        if (isBlank(bucket)) {
            throw new IOException("Invalid object-store URI " + name + ": expected " + scheme + "://bucket/key");
        }
        if (bucket.contains("/") || bucket.equals(".") || bucket.equals("..")) {
            throw new IOException("Invalid bucket name in " + name);
        }
        uri = URI.create(scheme + "://" + bucket);
        root = resolveRoot(conf);
        bucketDir = root.resolve(bucket);
        workingDir = new Path(uri.toString() + "/");
        blockSize = conf.getLong(BLOCK_SIZE_KEY, 32L * 1024 * 1024);
        user = System.getProperty("user.name", "lakeforge");
    }

    /** The local directory behind this bucket. */
    public java.nio.file.Path getBucketDirectory() {
        return bucketDir;
    }

    @Override
    public String getScheme() {
        return uri == null ? "s3" : uri.getScheme();
    }

    @Override
    public URI getUri() {
        return uri;
    }

    @Override
    public String getCanonicalServiceName() {
        return null; // no delegation tokens
    }

    @Override
    @SuppressWarnings("deprecation")
    public long getDefaultBlockSize() {
        return blockSize;
    }

    @Override
    public long getDefaultBlockSize(Path f) {
        return blockSize;
    }

    @Override
    public void setWorkingDirectory(Path dir) {
        workingDir = makeQualified(dir);
    }

    @Override
    public Path getWorkingDirectory() {
        return workingDir;
    }

    // -- path mapping ----------------------------------------------------------------------------------

    /** The local file behind an s3 path of this bucket. */
    java.nio.file.Path toLocal(Path path) throws IOException {
        Path qualified = makeQualified(path);
        String key = qualified.toUri().getPath();
        java.nio.file.Path local = bucketDir;
        for (String part : key.split("/")) {
            if (part.isEmpty() || part.equals(".")) {
                continue;
            }
            if (part.equals("..")) {
                throw new IOException("Invalid object-store path " + path + ": '..' is not allowed in keys");
            }
            local = local.resolve(part);
        }
        return local;
    }

    /** The s3 path of a local file under this bucket. */
    Path toS3(java.nio.file.Path local) {
        String key = bucketDir.relativize(local).toString().replace(java.io.File.separatorChar, '/');
        return new Path(uri.getScheme(), bucket, "/" + key);
    }

    private FileStatus status(java.nio.file.Path local, BasicFileAttributes a) {
        boolean dir = a.isDirectory();
        return new FileStatus(
            dir ? 0 : a.size(), dir, 1, dir ? 0 : blockSize, a.lastModifiedTime().toMillis(),
            a.lastAccessTime().toMillis(), dir ? DIR_PERMISSION : FILE_PERMISSION, user, user, toS3(local));
    }

    private static BasicFileAttributes attributes(java.nio.file.Path local) throws IOException {
        return Files.readAttributes(local, BasicFileAttributes.class);
    }

    private static boolean isTemporary(java.nio.file.Path local) {
        java.nio.file.Path name = local.getFileName();
        return name != null && name.toString().startsWith(TEMP_PREFIX);
    }

    // -- metadata --------------------------------------------------------------------------------------

    @Override
    public FileStatus getFileStatus(Path f) throws IOException {
        java.nio.file.Path local = toLocal(f);
        try {
            return status(local, attributes(local));
        } catch (NoSuchFileException | NotDirectoryException e) {
            throw new FileNotFoundException("No such file or directory: " + makeQualified(f));
        }
    }

    @Override
    public FileStatus[] listStatus(Path f) throws IOException {
        java.nio.file.Path local = toLocal(f);
        BasicFileAttributes attrs;
        try {
            attrs = attributes(local);
        } catch (NoSuchFileException | NotDirectoryException e) {
            throw new FileNotFoundException("No such file or directory: " + makeQualified(f));
        }
        if (!attrs.isDirectory()) {
            return new FileStatus[] {status(local, attrs)};
        }
        List<java.nio.file.Path> children = new ArrayList<>();
        try (DirectoryStream<java.nio.file.Path> stream = Files.newDirectoryStream(local)) {
            for (java.nio.file.Path child : stream) {
                if (!isTemporary(child)) {
                    children.add(child);
                }
            }
        } catch (NoSuchFileException e) {
            throw new FileNotFoundException("No such file or directory: " + makeQualified(f));
        }
        Collections.sort(children);
        List<FileStatus> result = new ArrayList<>(children.size());
        for (java.nio.file.Path child : children) {
            try {
                result.add(status(child, attributes(child)));
            } catch (NoSuchFileException e) {
                // deleted while listing, or a dangling link: not an object
            }
        }
        return result.toArray(new FileStatus[0]);
    }

    @Override
    public boolean mkdirs(Path f, FsPermission permission) throws IOException {
        java.nio.file.Path local = toLocal(f);
        try {
            Files.createDirectories(local);
        } catch (java.nio.file.FileAlreadyExistsException e) {
            if (Files.isRegularFile(local)) {
                throw new FileAlreadyExistsException("Cannot create directory " + makeQualified(f) + ": it is a file");
            }
            throw new ParentNotDirectoryException("Cannot create directory " + makeQualified(f)
                + ": a parent is a file (" + e.getFile() + ")");
        }
        return true;
    }

    @Override
    public boolean setReplication(Path src, short replication) {
        return true;
    }

    @Override
    public void setTimes(Path p, long mtime, long atime) throws IOException {
        java.nio.file.Path local = toLocal(p);
        try {
            if (mtime >= 0) {
                Files.setLastModifiedTime(local, FileTime.fromMillis(mtime));
            }
        } catch (NoSuchFileException e) {
            throw new FileNotFoundException("No such file or directory: " + makeQualified(p));
        }
    }

    // -- reading ---------------------------------------------------------------------------------------

    @Override
    public FSDataInputStream open(Path f, int bufferSize) throws IOException {
        java.nio.file.Path local = toLocal(f);
        BasicFileAttributes attrs;
        try {
            attrs = attributes(local);
        } catch (NoSuchFileException | NotDirectoryException e) {
            throw new FileNotFoundException("No such file: " + makeQualified(f));
        }
        if (attrs.isDirectory()) {
            throw new FileNotFoundException("Cannot open " + makeQualified(f) + ": it is a directory");
        }
        FileChannel channel = FileChannel.open(local, StandardOpenOption.READ);
        return new FSDataInputStream(
            new BufferedFSInputStream(new LocalInputStream(channel, statistics), Math.max(bufferSize, 4096)));
    }

    /** A seekable, positioned-readable stream over a file channel. */
    static final class LocalInputStream extends FSInputStream {
        private final FileChannel channel;
        private final Statistics stats;
        private long position;
        private boolean closed;

        LocalInputStream(FileChannel channel, Statistics stats) {
            this.channel = channel;
            this.stats = stats;
        }

        private void checkOpen() throws IOException {
            if (closed) {
                throw new IOException("Stream is closed");
            }
        }

        @Override
        public synchronized void seek(long pos) throws IOException {
            checkOpen();
            if (pos < 0) {
                throw new EOFException("Cannot seek to a negative offset: " + pos);
            }
            position = pos;
        }

        @Override
        public synchronized long getPos() {
            return position;
        }

        @Override
        public boolean seekToNewSource(long targetPos) {
            return false;
        }

        @Override
        public synchronized int read() throws IOException {
            byte[] one = new byte[1];
            int n = read(one, 0, 1);
            return n <= 0 ? -1 : (one[0] & 0xff);
        }

        @Override
        public synchronized int read(byte[] b, int off, int len) throws IOException {
            checkOpen();
            if (len == 0) {
                return 0;
            }
            int n = channel.read(ByteBuffer.wrap(b, off, len), position);
            if (n > 0) {
                position += n;
                if (stats != null) {
                    stats.incrementBytesRead(n);
                }
            }
            return n;
        }

        @Override
        public int read(long pos, byte[] b, int off, int len) throws IOException {
            checkOpen();
            if (len == 0) {
                return 0;
            }
            int n = channel.read(ByteBuffer.wrap(b, off, len), pos);
            if (n > 0 && stats != null) {
                stats.incrementBytesRead(n);
            }
            return n;
        }

        @Override
        public synchronized long skip(long n) throws IOException {
            checkOpen();
            if (n <= 0) {
                return 0;
            }
            long skipped = Math.min(n, Math.max(0, channel.size() - position));
            position += skipped;
            return skipped;
        }

        @Override
        public synchronized int available() throws IOException {
            checkOpen();
            return (int) Math.min(Integer.MAX_VALUE, Math.max(0, channel.size() - position));
        }

        @Override
        public synchronized void close() throws IOException {
            if (!closed) {
                closed = true;
                channel.close();
            }
        }
    }

    // -- writing ---------------------------------------------------------------------------------------

    @Override
    public FSDataOutputStream create(Path f, FsPermission permission, boolean overwrite, int bufferSize,
            short replication, long blockSize, Progressable progress) throws IOException {
        java.nio.file.Path local = toLocal(f);
        if (local.equals(bucketDir)) {
            throw new FileAlreadyExistsException("Cannot create " + makeQualified(f) + ": it is the bucket");
        }
        if (Files.isDirectory(local)) {
            throw new FileAlreadyExistsException("Cannot create " + makeQualified(f) + ": it is a directory");
        }
        if (!overwrite && Files.exists(local)) {
            throw new FileAlreadyExistsException("File already exists: " + makeQualified(f));
        }
        java.nio.file.Path parent = local.getParent();
        try {
            Files.createDirectories(parent);
        } catch (java.nio.file.FileAlreadyExistsException e) {
            throw new ParentNotDirectoryException("Cannot create " + makeQualified(f) + ": a parent is a file");
        }
        java.nio.file.Path temp = parent.resolve(TEMP_PREFIX + UUID.randomUUID() + "-" + local.getFileName());
        OutputStream out = Files.newOutputStream(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        return new FSDataOutputStream(new PublishOnClose(out, temp, local, overwrite, makeQualified(f)), statistics);
    }

    @Override
    public FSDataOutputStream createNonRecursive(Path f, FsPermission permission, EnumSet<CreateFlag> flags,
            int bufferSize, short replication, long blockSize, Progressable progress) throws IOException {
        java.nio.file.Path parent = toLocal(f).getParent();
        if (parent == null || !Files.isDirectory(parent)) {
            throw new FileNotFoundException("Parent directory of " + makeQualified(f) + " does not exist");
        }
        return create(f, permission, flags.contains(CreateFlag.OVERWRITE), bufferSize, replication, blockSize,
            progress);
    }

    /** Buffers into a hidden temporary file and moves it into place on close (an S3 PUT). */
    static final class PublishOnClose extends OutputStream {
        private final OutputStream out;
        private final java.nio.file.Path temp;
        private final java.nio.file.Path target;
        private final boolean overwrite;
        private final Path name;
        private boolean closed;

        PublishOnClose(OutputStream out, java.nio.file.Path temp, java.nio.file.Path target, boolean overwrite,
                Path name) {
            this.out = new java.io.BufferedOutputStream(out, 64 * 1024);
            this.temp = temp;
            this.target = target;
            this.overwrite = overwrite;
            this.name = name;
        }

        @Override
        public void write(int b) throws IOException {
            out.write(b);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
        }

        @Override
        public void flush() throws IOException {
            out.flush();
        }

        @Override
        public synchronized void close() throws IOException {
            if (closed) {
                return;
            }
            closed = true;
            try {
                out.close();
                if (!overwrite && Files.exists(target)) {
                    throw new FileAlreadyExistsException("File already exists: " + name);
                }
                try {
                    Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
                }
            } finally {
                Files.deleteIfExists(temp);
            }
        }
    }

    @Override
    public FSDataOutputStream append(Path f, int bufferSize, Progressable progress) throws IOException {
        throw new UnsupportedOperationException("Append is not supported by the lakeforge object store (as on S3): "
            + makeQualified(f));
    }

    // -- rename and delete -----------------------------------------------------------------------------

    @Override
    public boolean rename(Path src, Path dst) throws IOException {
        java.nio.file.Path from = toLocal(src);
        java.nio.file.Path to = toLocal(dst);
        if (from.equals(bucketDir) || !Files.exists(from, LinkOption.NOFOLLOW_LINKS)) {
            return false;
        }
        if (from.equals(to)) {
            return Files.isRegularFile(from);
        }
        if (Files.isDirectory(to)) {
            to = to.resolve(from.getFileName());
            if (Files.exists(to, LinkOption.NOFOLLOW_LINKS)) {
                return false;
            }
        } else if (Files.exists(to, LinkOption.NOFOLLOW_LINKS)) {
            return false;
        }
        if (to.startsWith(from)) {
            return false; // a directory into itself
        }
        try {
            Files.createDirectories(to.getParent());
        } catch (java.nio.file.FileAlreadyExistsException e) {
            return false; // a parent of the destination is a file
        }
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to);
        }
        return true;
    }

    @Override
    public boolean delete(Path f, boolean recursive) throws IOException {
        java.nio.file.Path local = toLocal(f);
        BasicFileAttributes attrs;
        try {
            attrs = Files.readAttributes(local, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException | NotDirectoryException e) {
            return false;
        }
        if (!attrs.isDirectory()) {
            Files.deleteIfExists(local);
            return true;
        }
        boolean empty;
        try (DirectoryStream<java.nio.file.Path> stream = Files.newDirectoryStream(local)) {
            empty = !stream.iterator().hasNext();
        }
        if (!empty && !recursive) {
            throw new PathIsNotEmptyDirectoryException(makeQualified(f).toString());
        }
        final java.nio.file.Path keep = local.equals(bucketDir) ? bucketDir : null;
        Files.walkFileTree(local, new SimpleFileVisitor<java.nio.file.Path>() {
            @Override
            public FileVisitResult visitFile(java.nio.file.Path file, BasicFileAttributes a) throws IOException {
                Files.deleteIfExists(file);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(java.nio.file.Path dir, IOException exc) throws IOException {
                if (!dir.equals(keep)) {
                    try {
                        Files.deleteIfExists(dir);
                    } catch (DirectoryNotEmptyException e) {
                        throw new IOException("Could not delete " + toS3(dir) + ": written to while being deleted");
                    }
                }
                return FileVisitResult.CONTINUE;
            }
        });
        return true;
    }
}
