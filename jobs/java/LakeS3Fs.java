/*
 * The FileContext side of lakeforge's object store (fs.AbstractFileSystem.s3.impl and friends): Structured
 * Streaming checkpoints and other FileContext users reach LakeS3FileSystem through Hadoop's
 * DelegateToFileSystem.
 */
package lakeforge.fs;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.DelegateToFileSystem;

public class LakeS3Fs extends DelegateToFileSystem {
    public LakeS3Fs(URI uri, Configuration conf) throws IOException, URISyntaxException {
        // No authority check here (a default port would be required for it, as for S3A): LakeS3FileSystem
        // refuses a URI without a bucket itself.
        super(uri, new LakeS3FileSystem(), conf, uri.getScheme(), false);
    }

    @Override
    public int getUriDefaultPort() {
        return -1;
    }
}
