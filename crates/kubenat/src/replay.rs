//! pcap replay through a node's engine (being written).
