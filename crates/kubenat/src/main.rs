//! `kubenat`: kube-proxy's Service data plane in userspace. With no arguments it tells the
//! story of the course notes' cluster, flow by flow.

use kubenat::story;

fn main() {
    print!("{}", story::render());
}
