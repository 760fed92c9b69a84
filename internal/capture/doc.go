// Package capture reads packet captures, pcap and pcapng, and writes pcap,
// without gopacket/layers' global tables (whose initialization and
// pointer-holding data would cost the CLI's start-up and every garbage
// collection).
//
// Reading bounds every allocation: a record is read only when it is no
// larger than the largest packet libpcap reads (MaxPacket) and than what is
// left of the file, so a hostile header cannot make the reader allocate
// gigabytes. A capture that ends in the middle of a record gives the
// packets before it, then an *Error naming the packet and the byte offset
// where it broke.
//
// Formats: pcap in either byte order with microsecond or nanosecond
// timestamps; pcapng (several sections, either byte order, several
// interfaces with their own link type, snap length and timestamp
// resolution) with enhanced, simple and obsolete packet blocks. Other
// blocks are skipped without being read into memory. Writer writes pcap
// (micro- or nanosecond), refusing records that readers would refuse.
package capture
