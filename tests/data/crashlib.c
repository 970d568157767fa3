/* A fake SSPI library with deliberate failures, for the native backend's isolation tests.
 *
 * Build: cc -shared -fPIC -o libcrash.so crashlib.c
 *
 *   DeleteSecurityContext   dwLower 0xDEAD -> SIGSEGV; otherwise SEC_E_OK
 *   FreeCredentialsHandle   dwLower 0xAB0  -> prints to stderr, then abort(); otherwise SEC_E_OK
 *   QueryContextAttributesW dwLower 0xBEEF -> sleeps forever; otherwise SEC_E_OK (SIZES 1,2,3,4)
 *   QuerySecurityPackageInfoW             -> prints to stdout, returns 0x00091234 (no known code)
 *   AcquireCredentialsHandleW             -> handle {0xC0DE, 0}, expiry 42
 *   ISC/ASC                               -> new context {0xC0, 0}, token "hi"; ASC turns a
 *                                            one-buffer input into SECBUFFER_EXTRA, cbBuffer 1
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef uint32_t ULONG;
typedef int32_t SECURITY_STATUS;
typedef struct { uint64_t dwLower, dwUpper; } SecHandle;
typedef struct { ULONG cbBuffer, BufferType; void *pvBuffer; } SecBuffer;
typedef struct { ULONG ulVersion, cBuffers; SecBuffer *pBuffers; } SecBufferDesc;
typedef struct { ULONG fCapabilities; uint16_t wVersion, wRPCID; ULONG cbMaxToken;
                 uint16_t *Name, *Comment; } SecPkgInfoW;

static const uint16_t CRASH_NAME[] = {'C', 'r', 'a', 's', 'h', 0};

SECURITY_STATUS EnumerateSecurityPackagesW(ULONG *count, SecPkgInfoW **infos) {
    SecPkgInfoW *info = calloc(1, sizeof *info);
    info->wVersion = 1;
    info->cbMaxToken = 64;
    info->Name = (uint16_t *)CRASH_NAME;
    info->Comment = (uint16_t *)CRASH_NAME;
    *count = 1;
    *infos = info;
    return 0;
}

SECURITY_STATUS QuerySecurityPackageInfoW(uint16_t *name, SecPkgInfoW **info) {
    (void)name;
    printf("noise on stdout that must not reach the protocol pipe\n");
    fflush(stdout);
    *info = NULL;
    return 0x00091234;
}

SECURITY_STATUS FreeContextBuffer(void *buffer) {
    free(buffer);
    return 0;
}

SECURITY_STATUS AcquireCredentialsHandleW(uint16_t *principal, uint16_t *package, ULONG use,
                                          void *logon_id, void *auth, void *fn, void *arg,
                                          SecHandle *credential, int64_t *expiry) {
    (void)principal; (void)package; (void)use; (void)logon_id; (void)auth; (void)fn; (void)arg;
    credential->dwLower = 0xC0DE;
    *expiry = 42;
    return 0;
}

SECURITY_STATUS FreeCredentialsHandle(SecHandle *credential) {
    if (credential && credential->dwLower == 0xAB0) {
        fprintf(stderr, "crashlib: deliberate abort\n");
        abort();
    }
    return 0;
}

static SECURITY_STATUS leg(SecHandle *new_context, SecBufferDesc *output, ULONG req, ULONG *attr) {
    new_context->dwLower = 0xC0;
    output->pBuffers[0].cbBuffer = 2;
    if (output->pBuffers[0].pvBuffer == NULL)
        output->pBuffers[0].pvBuffer = malloc(2);
    memcpy(output->pBuffers[0].pvBuffer, "hi", 2);
    *attr = req;
    return 0x00090312;
}

SECURITY_STATUS InitializeSecurityContextW(SecHandle *credential, SecHandle *context,
                                           uint16_t *target, ULONG req, ULONG r1, ULONG rep,
                                           SecBufferDesc *input, ULONG r2, SecHandle *new_context,
                                           SecBufferDesc *output, ULONG *attr, int64_t *expiry) {
    (void)credential; (void)context; (void)target; (void)r1; (void)rep; (void)input; (void)r2;
    (void)expiry;
    return leg(new_context, output, req, attr);
}

SECURITY_STATUS AcceptSecurityContext(SecHandle *credential, SecHandle *context,
                                      SecBufferDesc *input, ULONG req, ULONG rep,
                                      SecHandle *new_context, SecBufferDesc *output, ULONG *attr,
                                      int64_t *expiry) {
    (void)credential; (void)context; (void)rep; (void)expiry;
    if (input && input->cBuffers == 1 && input->pBuffers[0].cbBuffer > 1) {
        input->pBuffers[0].BufferType = 5; /* SECBUFFER_EXTRA: the last byte was not used */
        input->pBuffers[0].cbBuffer = 1;
    }
    return leg(new_context, output, req, attr);
}

SECURITY_STATUS CompleteAuthToken(SecHandle *context, SecBufferDesc *token) {
    (void)context; (void)token;
    return 0;
}

SECURITY_STATUS DeleteSecurityContext(SecHandle *context) {
    if (context && context->dwLower == 0xDEAD)
        raise(SIGSEGV);
    return 0;
}

SECURITY_STATUS QueryContextAttributesW(SecHandle *context, ULONG attribute, void *buffer) {
    if (context && context->dwLower == 0xBEEF)
        for (;;)
            sleep(1000);
    if (attribute == 0) {
        ULONG sizes[4] = {1, 2, 3, 4};
        memcpy(buffer, sizes, sizeof sizes);
    }
    return 0;
}
