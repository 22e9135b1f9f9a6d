// Exposes graphology and sigma as browser globals for the offline map (twitchgraph export --to html).
import Graph from "graphology";
import Sigma from "sigma";

window.graphology = { Graph };
window.Sigma = Sigma;
