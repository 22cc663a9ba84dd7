//! UEFI variables in an OVMF varstore (`OVMF_VARS*.fd`): certificates enrolled before
//! the first boot, into a private copy — shim's `MokList` (what `mokutil --import`
//! and MokManager would leave) or the UEFI `db`. The store is EDK2's authenticated
//! variable store inside a firmware volume: after the volume's header, a store header,
//! then records (a 60-byte header, the UTF-16 name, the data, 4-byte aligned) up to the
//! first free (0xFF) byte. A variable is changed as the firmware changes it: its old
//! record marked deleted, a new one appended.

use crate::error::{Error, Result};
use std::path::Path;

/// EFI_GUID in its on-disk (mixed-endian) form, from its text form.
pub const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// shim's vendor GUID (its MokList, MokListRT, MokListTrusted...).
pub const SHIM_LOCK: [u8; 16] = guid(
    0x605dab50,
    0xe046,
    0x4300,
    [0xab, 0xb6, 0x3d, 0xd8, 0x10, 0xdd, 0x8b, 0x23],
);
/// EFI_GLOBAL_VARIABLE (SecureBoot, SetupMode, PK, KEK).
pub const GLOBAL: [u8; 16] = guid(
    0x8be4df61,
    0x93ca,
    0x11d2,
    [0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c],
);
/// EDK2's Secure Boot configuration (its `SecureBootEnable` switch, what a firmware
/// setup menu's "Secure Boot: Disabled" writes).
const SECURE_BOOT_CONFIG: [u8; 16] = guid(
    0xf0a30bc7,
    0xaf08,
    0x4556,
    [0x99, 0xc4, 0x00, 0x10, 0x09, 0xc9, 0x3a, 0x44],
);
/// EFI_IMAGE_SECURITY_DATABASE_GUID (db, dbx).
pub const IMAGE_SECURITY_DATABASE: [u8; 16] = guid(
    0xd719b2cb,
    0x3d3a,
    0x4596,
    [0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f],
);
/// EFI_CERT_X509_GUID: a signature list of DER certificates.
const CERT_X509: [u8; 16] = guid(
    0xa5c059a1,
    0x94e4,
    0x4aa7,
    [0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72],
);
/// The authenticated variable store's signature.
const AUTH_STORE: [u8; 16] = guid(
    0xaaf32c78,
    0x947b,
    0x439a,
    [0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92],
);
/// Who owns an entry we add (any GUID; this one says cargo-kmod).
const OWNER: [u8; 16] = guid(
    0x6b6d6f64,
    0x6361,
    0x7267,
    [0x6f, 0x2d, 0x6b, 0x6d, 0x6f, 0x64, 0x00, 0x01],
);

/// EFI_VARIABLE_NON_VOLATILE | BOOTSERVICE_ACCESS: shim deletes a MokList that also
/// has RUNTIME_ACCESS ("Variable MokList has incorrect attribute").
pub const NV_BS: u32 = 0x3;

const HEADER: usize = 60;
const START_ID: u16 = 0x55aa;
const VAR_ADDED: u8 = 0x3f;
/// VAR_ADDED with the in-deleted-transition and deleted bits cleared.
const VAR_DELETED: u8 = 0x3c;

/// An OVMF varstore image, changed in memory.
pub struct VarStore {
    bytes: Vec<u8>,
    /// Where the store's records begin, and where it ends.
    first: usize,
    end: usize,
}

/// One record.
struct Record {
    at: usize,
    state: u8,
    attributes: u32,
    name: String,
    vendor: [u8; 16],
    data: std::ops::Range<usize>,
    next: usize,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Run {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl VarStore {
    /// Reads an OVMF varstore (`OVMF_VARS_4M.ms.fd`): a firmware volume holding an
    /// authenticated variable store.
    pub fn read(path: &Path) -> Result<VarStore> {
        let bytes = crate::fsutil::read_bounded(path, 64 << 20)?;
        VarStore::parse(bytes).map_err(|r| bad(path, format!("not an OVMF varstore: {r}")))
    }

    fn parse(bytes: Vec<u8>) -> std::result::Result<VarStore, String> {
        let u16_at = |o: usize| {
            bytes
                .get(o..o + 2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
        };
        if bytes.get(0x28..0x2c) != Some(b"_FVH") {
            return Err("no firmware volume header (_FVH)".into());
        }
        let store = u16_at(0x30).ok_or("short")? as usize;
        if bytes.get(store..store + 16) != Some(&AUTH_STORE[..]) {
            return Err("not an authenticated variable store".into());
        }
        let size = bytes
            .get(store + 16..store + 20)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or("short")?;
        let end = store + size;
        if end > bytes.len() || size < 28 {
            return Err(format!("its store claims {size} bytes"));
        }
        Ok(VarStore {
            first: (store + 28 + 3) & !3,
            end,
            bytes,
        })
    }

    /// The record at `at`, None at the free space.
    fn record(&self, at: usize) -> Option<Record> {
        let b = self.bytes.get(at..at + HEADER)?;
        if at + HEADER > self.end || u16::from_le_bytes([b[0], b[1]]) != START_ID {
            return None;
        }
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as usize;
        let (name_size, data_size) = (u32_at(36), u32_at(40));
        let name_at = at + HEADER;
        let data_at = name_at.checked_add(name_size)?;
        let next = data_at.checked_add(data_size)?;
        if next > self.end {
            return None;
        }
        let name: Vec<u16> = self.bytes[name_at..data_at]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|c| *c != 0)
            .collect();
        Some(Record {
            at,
            state: b[2],
            attributes: u32_at(4) as u32,
            name: String::from_utf16_lossy(&name),
            vendor: b[44..60].try_into().expect("16 bytes"),
            data: data_at..next,
            next: (next + 3) & !3,
        })
    }

    fn records(&self) -> Vec<Record> {
        let mut v = Vec::new();
        let mut at = self.first;
        while let Some(r) = self.record(at) {
            at = r.next;
            v.push(r);
        }
        v
    }

    /// The variable's current data and attributes.
    pub fn get(&self, name: &str, vendor: &[u8; 16]) -> Option<(u32, &[u8])> {
        self.records()
            .into_iter()
            .rev()
            .find(|r| r.state == VAR_ADDED && r.name == name && &r.vendor == vendor)
            .map(|r| (r.attributes, &self.bytes[r.data]))
    }

    /// Sets a variable as the firmware would: the live record marked deleted, a new
    /// one appended (keeping the old one's timestamp, for time-based authenticated
    /// variables like db).
    pub fn set(
        &mut self,
        name: &str,
        vendor: &[u8; 16],
        attributes: u32,
        data: &[u8],
    ) -> Result<()> {
        let records = self.records();
        let free = records.last().map_or(self.first, |r| r.next);
        let old = records
            .iter()
            .rev()
            .find(|r| r.state == VAR_ADDED && r.name == name && &r.vendor == vendor);
        let mut name16: Vec<u8> = name
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect();
        let mut header = Vec::with_capacity(HEADER);
        header.extend(START_ID.to_le_bytes());
        header.push(VAR_ADDED);
        header.push(0);
        header.extend(attributes.to_le_bytes());
        header.extend(0u64.to_le_bytes());
        match old {
            Some(o) => header.extend_from_slice(&self.bytes[o.at + 16..o.at + 32]),
            None => header.extend([0u8; 16]),
        }
        header.extend(0u32.to_le_bytes());
        header.extend((name16.len() as u32).to_le_bytes());
        header.extend((data.len() as u32).to_le_bytes());
        header.extend_from_slice(vendor);
        let len = HEADER + name16.len() + data.len();
        if free + len > self.end {
            return Err(Error::usage(
                format!("the varstore has no room for {name} ({len} bytes)"),
                "enroll fewer or smaller certificates",
            ));
        }
        if let Some(o) = old {
            self.bytes[o.at + 2] = VAR_DELETED;
        }
        header.append(&mut name16);
        header.extend_from_slice(data);
        self.bytes[free..free + len].copy_from_slice(&header);
        Ok(())
    }

    /// Appends DER certificates to shim's MokList (made when absent).
    pub fn add_mok(&mut self, certs: &[Vec<u8>]) -> Result<()> {
        let mut data = self
            .get("MokList", &SHIM_LOCK)
            .map(|(_, d)| d.to_vec())
            .unwrap_or_default();
        for c in certs {
            data.extend(signature_list(c));
        }
        self.set("MokList", &SHIM_LOCK, NV_BS, &data)
    }

    /// Sets shim's `MokListTrusted`, as MokManager does after `mokutil --untrust-mok`:
    /// shim then does not create `MokListTrustedRT`, and the kernel puts MOKs in
    /// `.platform` instead of `.machine` (shim's mok.c, MOK_VARIABLE_INVERSE).
    pub fn untrust_mok(&mut self) -> Result<()> {
        self.set("MokListTrusted", &SHIM_LOCK, NV_BS, &[1])
    }

    /// Turns Secure Boot off as the firmware's setup menu does: the keys stay enrolled
    /// (not setup mode), the firmware just stops verifying (`SecureBoot` reads 0).
    pub fn disable_secure_boot(&mut self) -> Result<()> {
        self.set("SecureBootEnable", &SECURE_BOOT_CONFIG, NV_BS, &[0])
    }

    /// Appends DER certificates to the UEFI db, keeping what it holds (Microsoft's CAs).
    pub fn add_db(&mut self, certs: &[Vec<u8>]) -> Result<()> {
        let (attributes, old) = self
            .get("db", &IMAGE_SECURITY_DATABASE)
            .map(|(a, d)| (a, d.to_vec()))
            // NV | BS | RT | TIME_BASED_AUTHENTICATED_WRITE_ACCESS.
            .unwrap_or((0x27, Vec::new()));
        let mut data = old;
        for c in certs {
            data.extend(signature_list(c));
        }
        self.set("db", &IMAGE_SECURITY_DATABASE, attributes, &data)
    }

    /// The image, to write to a private copy.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// One EFI_SIGNATURE_LIST of one X.509 certificate.
pub fn signature_list(der: &[u8]) -> Vec<u8> {
    let sig_size = 16 + der.len();
    let mut v = Vec::with_capacity(28 + sig_size);
    v.extend_from_slice(&CERT_X509);
    v.extend(((28 + sig_size) as u32).to_le_bytes());
    v.extend(0u32.to_le_bytes());
    v.extend((sig_size as u32).to_le_bytes());
    v.extend_from_slice(&OWNER);
    v.extend_from_slice(der);
    v
}

/// A variable's file name under efivarfs: `MokListRT-605dab50-e046-4300-abb6-3dd810dd8b23`.
pub fn efivarfs_name(name: &str, vendor: &[u8; 16]) -> String {
    let g = vendor;
    format!(
        "{name}-{:08x}-{:04x}-{:04x}-{}-{}",
        u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
        u16::from_le_bytes([g[4], g[5]]),
        u16::from_le_bytes([g[6], g[7]]),
        hex::encode(&g[8..10]),
        hex::encode(&g[10..16])
    )
}

/// The X.509 certificates in a run of EFI_SIGNATURE_LISTs (MokListRT, db), DER each;
/// lists of other types (hashes) are skipped, a truncated one ends the walk.
pub fn x509_certs(mut lists: &[u8]) -> Vec<Vec<u8>> {
    let u32_at = |b: &[u8], at: usize| -> usize {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
    };
    let mut out = Vec::new();
    while lists.len() >= 28 {
        let (list_size, header_size, sig_size) =
            (u32_at(lists, 16), u32_at(lists, 20), u32_at(lists, 24));
        if list_size < 28 || list_size > lists.len() || sig_size <= 16 {
            break;
        }
        if lists[..16] == CERT_X509 {
            let body = &lists[28 + header_size.min(list_size - 28)..list_size];
            // Each entry: the owner GUID, then the certificate.
            out.extend(body.chunks_exact(sig_size).map(|e| e[16..].to_vec()));
        }
        lists = &lists[list_size..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny store built by hand: FV header, store header, one record, free space.
    fn store() -> VarStore {
        let mut b = vec![0u8; 0x48];
        b[0x28..0x2c].copy_from_slice(b"_FVH");
        b[0x30..0x32].copy_from_slice(&0x48u16.to_le_bytes());
        b.extend_from_slice(&AUTH_STORE);
        b.extend(4096u32.to_le_bytes());
        b.extend([0x5a, 0xfe, 0, 0, 0, 0, 0, 0]);
        b.resize(0x48 + 4096, 0xff);
        VarStore::parse(b).unwrap()
    }

    #[test]
    fn variables_are_appended_and_replaced_as_the_firmware_does() {
        let mut s = store();
        assert!(s.get("MokList", &SHIM_LOCK).is_none());
        s.add_mok(&[b"cert-one".to_vec()]).unwrap();
        let (attr, data) = s.get("MokList", &SHIM_LOCK).unwrap();
        assert_eq!(attr, NV_BS);
        assert_eq!(data, signature_list(b"cert-one"));
        s.add_mok(&[b"cert-two".to_vec()]).unwrap();
        let (_, data) = s.get("MokList", &SHIM_LOCK).unwrap();
        assert_eq!(
            data,
            [signature_list(b"cert-one"), signature_list(b"cert-two")].concat()
        );
        // The first record is kept, marked deleted; the store parses again from bytes.
        let again = VarStore::parse(s.bytes().to_vec()).unwrap();
        let states: Vec<u8> = again.records().iter().map(|r| r.state).collect();
        assert_eq!(states, [VAR_DELETED, VAR_ADDED]);
        // Records are 4-byte aligned.
        assert!(again.records().iter().all(|r| r.at % 4 == 0));
    }

    #[test]
    fn a_store_without_room_or_not_a_store_is_refused() {
        let mut s = store();
        assert!(s.add_db(&[vec![0u8; 8192]]).is_err());
        assert!(
            s.get("db", &IMAGE_SECURITY_DATABASE).is_none(),
            "nothing half-written"
        );
        assert!(VarStore::parse(vec![0u8; 4096]).is_err());
    }

    #[test]
    fn certificates_are_read_back_from_signature_lists() {
        let lists = [signature_list(b"one"), signature_list(b"second")].concat();
        assert_eq!(x509_certs(&lists), [b"one".to_vec(), b"second".to_vec()]);
        // Truncated or nonsense input ends the walk without panicking.
        assert_eq!(x509_certs(&lists[..40]), Vec::<Vec<u8>>::new());
        assert!(x509_certs(&[0xff; 64]).is_empty());
        assert_eq!(
            efivarfs_name("MokListRT", &SHIM_LOCK),
            "MokListRT-605dab50-e046-4300-abb6-3dd810dd8b23"
        );
    }

    #[test]
    fn signature_list_layout() {
        let l = signature_list(&[1, 2, 3]);
        assert_eq!(l.len(), 28 + 16 + 3);
        assert_eq!(&l[16..20], &(47u32).to_le_bytes());
        assert_eq!(&l[24..28], &(19u32).to_le_bytes());
    }
}
