import { buildImage, ociLayoutRef } from '../helpers/oci-builder.js'

// Writes a one-layer image as an OCI layout and prints its `oci:DIR:ref` and manifest digest,
// so the demo can push images without a Docker daemon. Usage: make-image ARCH SEED

const [architecture = 'amd64', seed = 'demo'] = process.argv.slice(2)
const image = buildImage({ platform: { os: 'linux', architecture }, seed })
process.stdout.write(`${ociLayoutRef(image)} ${image.manifest.digest}\n`)
