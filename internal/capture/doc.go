// Package capture reads packet captures, pcap and pcapng, with every
// allocation bounded: a record is read only when it is no larger than the
// largest packet libpcap reads (MaxPacket) and than what is left of the
// file, so a hostile header cannot make the reader allocate gigabytes. A
// capture that ends in the middle of a record gives the packets before it,
// then an *Error naming the packet and the byte offset where it broke.
//
// Formats: pcap in either byte order with microsecond or nanosecond
// timestamps; pcapng (several sections, either byte order, several
// interfaces with their own link type, snap length and timestamp
// resolution) with enhanced, simple and obsolete packet blocks. Other
// blocks are skipped without being read into memory.
package capture
