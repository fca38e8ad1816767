/*
 * A stand-in for bcryptprimitives.dll, which Wine 8 does not ship.
 *
 * Every Windows binary built by Rust 1.78 or later imports ProcessPrng from
 * bcryptprimitives.dll; without this DLL each test executable fails to load
 * under Wine 8 (exit code 53, "bcryptprimitives.dll not found").
 * `cargo xtask setup` builds this file with mingw and puts the DLL into the
 * Wine prefix's system32. On Windows and on newer Wine it is never used.
 */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
