// The page's labels in Spanish (the notes' language) and English. The simulator's own
// lines stay as `kubenat` prints them, so they match the command line word for word.
export const LABELS = {
  es: {
    title: "kubenat: la red de los apuntes en el navegador",
    intro: "El clúster de los apuntes «Comunicaciones en Kubernetes» simulado aquí mismo: cada nodo reescribe los paquetes con las mismas reglas que kube-proxy programa en NETFILTER. Nada que instalar.",
    loading: "Cargando el simulador…",
    ready: "Listo. Simulado en {ms} ms.",
    failed: "Error: {error}",
    clusterTitle: "El clúster de los apuntes: MenchuPC, el balanceador, los nodos y sus pods",
    requestTitle: "Envía una petición",
    requestHelp: "MenchuPC pide http://web1.miempresa.com/. Cada línea es un salto; las de DNAT y SNAT muestran las direcciones antes (->) y después (=>) de cada reescritura.",
    seed: "Semilla",
    sendRequest: "Enviar otra petición",
    journeyOf: "Petición {id}: servida por {pod}",
    journeyFailed: "Petición {id}: {error}",
    sequence: "Diagrama de secuencia",
    breakTitle: "Rompe cosas",
    breakHelp: "Al segundo 1 algo falla mientras MenchuPC pide una página cada 100 ms. Kubernetes recrea el pod en otro nodo con otra IP y las reglas de cada nodo lo siguen.",
    killMariadb: "Matar el pod de MariaDB (mariadb-0)",
    killWordpress: "Matar un pod de WordPress",
    ruina: "OPCIÓN 1: RUINA (wp-config.php con la IP del pod de MariaDB)",
    rollout: "Rollout restart del Deployment wordpress",
    scale: "Escalar el Deployment wordpress a 4 réplicas",
    breakIt: "¡Rómpelo!",
    breakSummary: "{requests} peticiones: {ok} bien, {failed} fallidas; perdidas por el evento: {lost}.",
    traceTitle: "¿Adónde va este paquete?",
    traceHelp: "Un paquete por las reglas de un nodo (kubenat trace), con los manifiestos de abajo.",
    node: "Nodo",
    protocol: "Protocolo",
    source: "Origen (IP[:puerto])",
    destination: "Destino (IP:puerto)",
    traceIt: "Trazar",
    manifestsTitle: "Tus propios manifiestos",
    manifestsHelp: "Pega la salida de kubectl get services,endpointslices,nodes -A -o yaml (y, si quieres, una KubeProxyConfiguration). Los errores dicen línea y campo, como en la línea de comandos.",
    check: "Comprobar",
    rules: "Ver las reglas del nodo",
    resetManifests: "Volver a los de los apuntes",
    noErrors: "Sin errores: nodos {nodes}.",
    footer: "kubenat: el motor NAT de kube-proxy en espacio de usuario, compilado a WebAssembly.",
  },
  en: {
    title: "kubenat: the notes' network in your browser",
    intro: "The cluster of the course notes (\"Comunicaciones en Kubernetes\"), simulated right here: every node rewrites packets with the same rules kube-proxy programs into netfilter. Nothing to install.",
    loading: "Loading the simulator…",
    ready: "Ready. Simulated in {ms} ms.",
    failed: "Error: {error}",
    clusterTitle: "The notes' cluster: MenchuPC, the balancer, the nodes and their pods",
    requestTitle: "Send a request",
    requestHelp: "MenchuPC asks for http://web1.miempresa.com/. Each line is a hop; DNAT and SNAT lines show the addresses before (->) and after (=>) each rewrite.",
    seed: "Seed",
    sendRequest: "Send another request",
    journeyOf: "Request {id}: served by {pod}",
    journeyFailed: "Request {id}: {error}",
    sequence: "Sequence diagram",
    breakTitle: "Break things",
    breakHelp: "At 1 s something fails while MenchuPC asks for a page every 100 ms. Kubernetes recreates the pod on another node with another IP, and every node's rules follow.",
    killMariadb: "Kill the MariaDB pod (mariadb-0)",
    killWordpress: "Kill a WordPress pod",
    ruina: "OPTION 1: RUINA (wp-config.php with the MariaDB pod's IP)",
    rollout: "Rollout restart of the wordpress Deployment",
    scale: "Scale the wordpress Deployment to 4 replicas",
    breakIt: "Break it!",
    breakSummary: "{requests} requests: {ok} succeeded, {failed} failed; lost to the event: {lost}.",
    traceTitle: "Where does this packet go?",
    traceHelp: "One packet through one node's rules (kubenat trace), with the manifests below.",
    node: "Node",
    protocol: "Protocol",
    source: "Source (IP[:port])",
    destination: "Destination (IP:port)",
    traceIt: "Trace",
    manifestsTitle: "Your own manifests",
    manifestsHelp: "Paste the output of kubectl get services,endpointslices,nodes -A -o yaml (and a KubeProxyConfiguration if you like). Errors name the line and field, as the command line does.",
    check: "Check",
    rules: "Show the node's rules",
    resetManifests: "Back to the notes'",
    noErrors: "No errors: nodes {nodes}.",
    footer: "kubenat: kube-proxy's NAT engine in userspace, compiled to WebAssembly.",
  },
};

let current = new URLSearchParams(location.search).get("lang") === "en" ? "en" : "es";

/// The label `key` in the current language, with `{name}` filled from `values`.
export function t(key, values = {}) {
  const text = LABELS[current][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

/// Labels `el` with `key` and `values`, and keeps them so a language switch relabels it.
export function label(el, key, values = {}) {
  el.dataset.i18n = key;
  el.dataset.i18nValues = JSON.stringify(values);
  el.textContent = t(key, values);
}

/// Switches the language and relabels every element marked `data-i18n`.
export function setLanguage(lang) {
  current = lang;
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n, JSON.parse(el.dataset.i18nValues ?? "{}"));
  }
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
}

export function language() {
  return current;
}
