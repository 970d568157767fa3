/* sspi-agent: the synchronous SSPI calls of secur32.dll on a line protocol (stdin -> stdout).
 *
 * The protocol is specs/agent-protocol.md (version 1). The agent never interprets: it parses a
 * request, makes the call with exactly the arguments given (handle values as sent, NULL where
 * the request says "-"), and reports the status and every output. What a caller in C owns
 * (output tokens, package infos, user names) is copied into the reply and released with
 * FreeContextBuffer at once, so nothing leaks when the caller never frees it; the reply carries
 * the pointer the library returned.
 *
 * Built with mingw-w64 (agent/build.sh) or MSVC (cl /O2 sspi-agent.c secur32.lib). It runs the
 * same under Wine and on Windows. A fault inside the library is reported as the line
 * "CRASH 0x<exception code>" and the process exits with that code.
 */
#define SECURITY_WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <sspi.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROTOCOL_VERSION 1
#define OUTPUT_CAPACITY 48256 /* larger than any cbMaxToken (48000); see calls.py */
#define EXPIRY_SENTINEL 0x5A5A5A5A5A5A5A5ALL
#define MAX_LINE (4 * 1024 * 1024)
#define MAX_BUFFERS 16
#define QCA_SCRATCH 1024

static FILE *replies;       /* the protocol's stdout, kept private (see main) */
static char *line;          /* the request being parsed */
static char *cursor;

/* -- reading a request ------------------------------------------------------------------ */

static int failed;          /* a malformed request: answered ERR, the agent stays up */
static char failure[256];

static void fail(const char *what) {
    if (!failed) snprintf(failure, sizeof failure, "%s", what);
    failed = 1;
}

static char *next_token(void) {
    while (*cursor == ' ') cursor++;
    if (!*cursor) { fail("missing argument"); return NULL; }
    char *start = cursor;
    while (*cursor && *cursor != ' ') cursor++;
    if (*cursor) *cursor++ = 0;
    return start;
}

static int is_null(const char *token) { return token && strcmp(token, "-") == 0; }

static unsigned long long read_int(void) {
    char *token = next_token();
    if (!token) return 0;
    if (strncmp(token, "i:", 2) != 0) { fail("expected i:"); return 0; }
    return strtoull(token + 2, NULL, 10);
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes hex in place; returns the byte count, -1 on a bad digit. */
static long unhex(char *text) {
    size_t n = strlen(text);
    if (n % 2) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        text[i] = (char)(hi << 4 | lo);
    }
    return (long)(n / 2);
}

/* b:<hex> -> bytes (in place in the line); "-" -> NULL with *size 0. */
static char *read_bytes(unsigned long *size, int *present) {
    char *token = next_token();
    *size = 0;
    *present = 0;
    if (!token || is_null(token)) return NULL;
    if (strncmp(token, "b:", 2) != 0) { fail("expected b:"); return NULL; }
    long n = unhex(token + 2);
    if (n < 0) { fail("bad hex"); return NULL; }
    *size = (unsigned long)n;
    *present = 1;
    return token + 2;
}

/* s:<hex of UTF-16LE> -> a NUL-terminated wide string (malloc'd); "-" -> NULL. */
static WCHAR *read_wide(void) {
    char *token = next_token();
    if (!token || is_null(token)) return NULL;
    if (strncmp(token, "s:", 2) != 0) { fail("expected s:"); return NULL; }
    long n = unhex(token + 2);
    if (n < 0 || n % 2) { fail("bad wide string"); return NULL; }
    WCHAR *text = calloc((size_t)n / 2 + 1, sizeof(WCHAR));
    memcpy(text, token + 2, (size_t)n);
    return text;
}

/* h:<lower>:<upper> (decimal) -> the handle; "-" -> NULL. */
static PSecHandle read_handle(SecHandle *storage) {
    char *token = next_token();
    if (!token || is_null(token)) return NULL;
    if (strncmp(token, "h:", 2) != 0) { fail("expected h:"); return NULL; }
    char *rest;
    storage->dwLower = (ULONG_PTR)strtoull(token + 2, &rest, 10);
    if (*rest != ':') { fail("bad handle"); return NULL; }
    storage->dwUpper = (ULONG_PTR)strtoull(rest + 1, NULL, 10);
    return storage;
}

/* n:<count>, then count of (i:type i:cb b:data|-): a SecBufferDesc over copies; "-" -> NULL. */
typedef struct {
    SecBufferDesc desc;
    SecBuffer buffers[MAX_BUFFERS];
    SecBuffer before[MAX_BUFFERS];
    char *storage[MAX_BUFFERS];
    unsigned long capacity[MAX_BUFFERS];
} Descriptor;

static long read_count(void) {
    char *token = next_token();
    if (!token) return -1;
    if (strncmp(token, "n:", 2) != 0) { fail("expected n:"); return -1; }
    return strtol(token + 2, NULL, 10);
}

static PSecBufferDesc read_buffers(Descriptor *d) {
    memset(d, 0, sizeof *d);
    char *peek = cursor;
    while (*peek == ' ') peek++;
    if (peek[0] == '-' && (peek[1] == ' ' || peek[1] == 0)) { next_token(); return NULL; }
    long count = read_count();
    if (count < 0 || count > MAX_BUFFERS) { fail("bad buffer count"); return NULL; }
    for (long i = 0; i < count; i++) {
        unsigned long type = (unsigned long)read_int();
        unsigned long cb = (unsigned long)read_int();
        unsigned long size;
        int present;
        char *data = read_bytes(&size, &present);
        void *pointer = NULL;
        if (size || cb) {
            /* At least cbBuffer bytes behind the pointer: the library never reads beyond. */
            unsigned long capacity = cb > size ? cb : size;
            d->storage[i] = calloc(capacity ? capacity : 1, 1);
            if (size) memcpy(d->storage[i], data, size);
            d->capacity[i] = capacity;
            pointer = d->storage[i];
        }
        d->buffers[i].cbBuffer = cb;
        d->buffers[i].BufferType = type;
        d->buffers[i].pvBuffer = pointer;
        d->before[i] = d->buffers[i];
    }
    /* pBuffers is never NULL, even for no buffers, as a C caller's would not be. */
    d->desc.ulVersion = SECBUFFER_VERSION;
    d->desc.cBuffers = (unsigned long)count;
    d->desc.pBuffers = d->buffers;
    return &d->desc;
}

static void free_buffers(Descriptor *d) {
    for (int i = 0; i < MAX_BUFFERS; i++) free(d->storage[i]);
}

/* -- writing a reply -------------------------------------------------------------------- */

/* Every field of a reply is written after the whole request parsed: "OK" goes first. */
static int started;

static void field(void) {
    if (!started) fputs("OK", replies);
    started = 1;
    fputc(' ', replies);
}

static void put_int(long long value) { field(); fprintf(replies, "i:%lld", value); }
static void put_uint(unsigned long long value) { field(); fprintf(replies, "i:%llu", value); }
/* SECURITY_STATUS is a LONG: reported as its unsigned 32-bit value (0x80090308, not -2146893048). */
static void put_status(SECURITY_STATUS status) { put_uint((ULONG)status); }
static void put_null(void) { field(); fputc('-', replies); }
static void put_word(const char *word) { field(); fputs(word, replies); }
static void put_count(unsigned long count) { field(); fprintf(replies, "n:%lu", count); }

static void put_hex(const char *prefix, const void *data, size_t size) {
    const unsigned char *bytes = data;
    field();
    fputs(prefix, replies);
    for (size_t i = 0; i < size; i++) fprintf(replies, "%02x", bytes[i]);
}

static void put_wide(const WCHAR *text) {
    if (!text) { put_null(); return; }
    put_hex("s:", text, wcslen(text) * sizeof(WCHAR));
}

static void put_handle(const SecHandle *h) {
    field();
    fprintf(replies, "h:%llu:%llu", (unsigned long long)h->dwLower,
            (unsigned long long)h->dwUpper);
}

static void put_pointer(const void *pointer) {
    if (pointer) put_uint((unsigned long long)(ULONG_PTR)pointer); else put_null();
}

static void put_expiry(const TimeStamp *expiry) { put_int(expiry->QuadPart); }

static void put_package(const SecPkgInfoW *info) {
    put_wide(info->Name);
    put_wide(info->Comment);
    put_uint(info->fCapabilities);
    put_uint(info->wVersion);
    put_uint(info->wRPCID);
    put_uint(info->cbMaxToken);
}

/* -- the calls -------------------------------------------------------------------------- */

static void enumerate_security_packages(void) {
    ULONG count = 0;
    PSecPkgInfoW infos = NULL;
    SECURITY_STATUS status = EnumerateSecurityPackagesW(&count, &infos);
    put_status(status);
    unsigned long shown = (status == SEC_E_OK && infos) ? count : 0;
    put_count(shown);
    for (unsigned long i = 0; i < shown; i++) put_package(&infos[i]);
    put_pointer(infos);
    if (infos) FreeContextBuffer(infos);
}

static void query_security_package_info(void) {
    WCHAR *name = read_wide();
    if (failed) { free(name); return; }
    PSecPkgInfoW info = NULL;
    SECURITY_STATUS status = QuerySecurityPackageInfoW(name, &info);
    put_status(status);
    if (status == SEC_E_OK && info) put_package(info); else put_null();
    put_pointer(info);
    if (info) FreeContextBuffer(info);
    free(name);
}

static void acquire_credentials_handle(void) {
    WCHAR *principal = read_wide();
    WCHAR *package = read_wide();
    unsigned long use = (unsigned long)read_int();
    SEC_WINNT_AUTH_IDENTITY_W identity;
    SEC_WINNT_AUTH_IDENTITY_W *auth = NULL;
    WCHAR *user = NULL, *domain = NULL, *password = NULL;
    char *peek = cursor;
    while (*peek == ' ') peek++;
    if (peek[0] == '-' && (peek[1] == ' ' || peek[1] == 0)) {
        next_token();
    } else if (read_count() == 3) {
        user = read_wide();
        domain = read_wide();
        password = read_wide();
        memset(&identity, 0, sizeof identity);
        identity.User = (unsigned short *)user;
        identity.UserLength = user ? (unsigned long)wcslen(user) : 0;
        identity.Domain = (unsigned short *)domain;
        identity.DomainLength = domain ? (unsigned long)wcslen(domain) : 0;
        identity.Password = (unsigned short *)password;
        identity.PasswordLength = password ? (unsigned long)wcslen(password) : 0;
        identity.Flags = SEC_WINNT_AUTH_IDENTITY_UNICODE;
        auth = &identity;
    } else {
        fail("identity must be - or n:3");
    }
    if (!failed) {
        CredHandle credential = {0, 0};
        TimeStamp expiry;
        expiry.QuadPart = EXPIRY_SENTINEL;
        SECURITY_STATUS status = AcquireCredentialsHandleW(
            principal, package, use, NULL, auth, NULL, NULL, &credential, &expiry);
        put_status(status);
        put_handle(&credential);
        put_expiry(&expiry);
    }
    free(principal); free(package); free(user); free(domain); free(password);
}

static void free_credentials_handle(void) {
    SecHandle storage;
    PSecHandle credential = read_handle(&storage);
    if (failed) return;
    put_status(FreeCredentialsHandle(credential));
}

/* The input buffers after the call: "-" when the call changed none of them. */
static void put_input_after(const Descriptor *d, const PSecBufferDesc desc) {
    if (!desc) { put_null(); return; }
    int changed = 0;
    for (unsigned long i = 0; i < desc->cBuffers; i++) {
        const SecBuffer *a = &d->buffers[i], *b = &d->before[i];
        if (a->cbBuffer != b->cbBuffer || a->BufferType != b->BufferType ||
            a->pvBuffer != b->pvBuffer) changed = 1;
    }
    if (!changed) { put_null(); return; }
    put_count(desc->cBuffers);
    for (unsigned long i = 0; i < desc->cBuffers; i++) {
        const SecBuffer *a = &d->buffers[i];
        put_uint(a->BufferType);
        put_uint(a->cbBuffer);
        /* Only memory the agent owns is read: a pointer into one of its copies. */
        size_t shown = 0;
        const char *pointer = a->pvBuffer;
        for (int j = 0; j < MAX_BUFFERS; j++) {
            const char *start = d->storage[j];
            if (start && pointer >= start && pointer < start + d->capacity[j]) {
                size_t room = (size_t)(start + d->capacity[j] - pointer);
                shown = a->cbBuffer < room ? a->cbBuffer : room;
                break;
            }
        }
        put_hex("b:", pointer, shown);
    }
}

/* One ISC/ASC call. phNewContext is a separate struct holding phContext's values ({0, 0} on
 * a first leg), which is what the usual in-place call leaves in the caller's handle. */
static void leg(int client) {
    SecHandle cred_storage, ctx_storage;
    PSecHandle credential = read_handle(&cred_storage);
    PSecHandle context = read_handle(&ctx_storage);
    WCHAR *target = client ? read_wide() : NULL;
    unsigned long req = (unsigned long)read_int();
    unsigned long data_rep = (unsigned long)read_int();
    Descriptor input;
    PSecBufferDesc in_desc = read_buffers(&input);
    if (failed) { free(target); free_buffers(&input); return; }

    CtxtHandle new_context = {0, 0};
    if (context) new_context = *context;
    static char store[OUTPUT_CAPACITY];
    SecBuffer out = {0, SECBUFFER_TOKEN, NULL};  /* NULL: the library allocates */
    if (!(req & ISC_REQ_ALLOCATE_MEMORY)) { out.cbBuffer = OUTPUT_CAPACITY; out.pvBuffer = store; }
    SecBufferDesc out_desc = {SECBUFFER_VERSION, 1, &out};
    ULONG attr = 0;
    TimeStamp expiry;
    expiry.QuadPart = EXPIRY_SENTINEL;
    SECURITY_STATUS status;
    if (client)
        status = InitializeSecurityContextW(credential, context, target, req, 0, data_rep,
                                            in_desc, 0, &new_context, &out_desc, &attr, &expiry);
    else
        status = AcceptSecurityContext(credential, context, in_desc, req, data_rep,
                                       &new_context, &out_desc, &attr, &expiry);
    put_status(status);
    put_handle(&new_context);
    put_count(1);
    put_uint(out.BufferType);
    if (!out.pvBuffer) {
        put_hex("b:", "", 0);
    } else if (out.pvBuffer == store) {
        /* cbBuffer still equal to the capacity means the library wrote nothing. */
        put_hex("b:", store, out.cbBuffer >= OUTPUT_CAPACITY ? 0 : out.cbBuffer);
    } else {
        put_hex("b:", out.pvBuffer, out.cbBuffer);
        FreeContextBuffer(out.pvBuffer);  /* the library allocated it (ALLOCATE_MEMORY) */
    }
    put_uint(attr);
    put_expiry(&expiry);
    put_input_after(&input, in_desc);
    free(target);
    free_buffers(&input);
}

static void complete_auth_token(void) {
    SecHandle storage;
    PSecHandle context = read_handle(&storage);
    Descriptor token;
    PSecBufferDesc desc = read_buffers(&token);
    if (!failed) put_status(CompleteAuthToken(context, desc));
    free_buffers(&token);
}

static void delete_security_context(void) {
    SecHandle storage;
    PSecHandle context = read_handle(&storage);
    if (failed) return;
    put_status(DeleteSecurityContext(context));
}

static void query_context_attributes(void) {
    SecHandle storage;
    PSecHandle context = read_handle(&storage);
    unsigned long attribute = (unsigned long)read_int();
    if (failed) return;
    static union { char bytes[QCA_SCRATCH]; ULONGLONG align; } scratch;
    memset(&scratch, 0, sizeof scratch);
    SECURITY_STATUS status = QueryContextAttributesW(context, attribute, &scratch);
    put_status(status);
    if (status != SEC_E_OK) { put_null(); return; }
    switch (attribute) {
    case SECPKG_ATTR_SIZES: {
        SecPkgContext_Sizes *s = (void *)&scratch;
        put_word("k:sizes");
        put_uint(s->cbMaxToken); put_uint(s->cbMaxSignature);
        put_uint(s->cbBlockSize); put_uint(s->cbSecurityTrailer);
        break;
    }
    case SECPKG_ATTR_STREAM_SIZES: {
        SecPkgContext_StreamSizes *s = (void *)&scratch;
        put_word("k:stream_sizes");
        put_uint(s->cbHeader); put_uint(s->cbTrailer); put_uint(s->cbMaximumMessage);
        put_uint(s->cBuffers); put_uint(s->cbBlockSize);
        break;
    }
    case SECPKG_ATTR_LIFESPAN: {
        SecPkgContext_Lifespan *s = (void *)&scratch;
        put_word("k:lifespan");
        put_int(s->tsStart.QuadPart); put_int(s->tsExpiry.QuadPart);
        break;
    }
    case SECPKG_ATTR_NAMES: {
        SecPkgContext_NamesW *s = (void *)&scratch;
        put_word("k:names");
        put_wide(s->sUserName);
        put_pointer(s->sUserName);
        if (s->sUserName) FreeContextBuffer(s->sUserName);
        break;
    }
    case SECPKG_ATTR_PACKAGE_INFO: {
        SecPkgContext_PackageInfoW *s = (void *)&scratch;
        if (!s->PackageInfo) { put_null(); break; }
        put_word("k:package_info");
        put_package(s->PackageInfo);
        put_pointer(s->PackageInfo);
        FreeContextBuffer(s->PackageInfo);
        break;
    }
    default:
        put_null();
    }
}

static void free_context_buffer(void) {
    char *peek = cursor;
    while (*peek == ' ') peek++;
    void *pointer = NULL;
    if (peek[0] == '-' && (peek[1] == ' ' || peek[1] == 0)) next_token();
    else pointer = (void *)(ULONG_PTR)read_int();
    if (failed) return;
    put_status(FreeContextBuffer(pointer));
}

static const struct { const char *name; void (*run)(void); } CALLS[] = {
    {"EnumerateSecurityPackagesW", enumerate_security_packages},
    {"QuerySecurityPackageInfoW", query_security_package_info},
    {"AcquireCredentialsHandleW", acquire_credentials_handle},
    {"FreeCredentialsHandle", free_credentials_handle},
    {"InitializeSecurityContextW", NULL},
    {"AcceptSecurityContext", NULL},
    {"CompleteAuthToken", complete_auth_token},
    {"DeleteSecurityContext", delete_security_context},
    {"QueryContextAttributesW", query_context_attributes},
    {"FreeContextBuffer", free_context_buffer},
};

static void serve_one(void) {
    cursor = line;
    failed = started = 0;
    char *name = next_token();
    if (!name) { fputs("ERR empty request\n", replies); return; }
    if (!strcmp(name, "InitializeSecurityContextW") || !strcmp(name, "AcceptSecurityContext")) {
        leg(name[0] == 'I');
    } else {
        size_t i;
        for (i = 0; i < sizeof CALLS / sizeof *CALLS; i++)
            if (CALLS[i].run && !strcmp(name, CALLS[i].name)) break;
        if (i == sizeof CALLS / sizeof *CALLS) {
            fprintf(replies, "ERR unknown call %.64s\n", name);
            return;
        }
        CALLS[i].run();
    }
    /* A request that did not parse made no call and wrote no field: only its error. */
    if (failed) fprintf(replies, "ERR %s\n", failure); else fputc('\n', replies);
}

/* A fault inside the library: say so on the protocol, then die with the exception code. */
static LONG WINAPI on_fault(EXCEPTION_POINTERS *info) {
    DWORD code = info->ExceptionRecord->ExceptionCode;
    fprintf(replies, "%sCRASH 0x%08lx\n", started ? "\n" : "", (unsigned long)code);
    fflush(replies);
    TerminateProcess(GetCurrentProcess(), code);
    return EXCEPTION_EXECUTE_HANDLER;
}

int main(void) {
    /* No error dialog and no debugger on a fault: the parent must see the process die. */
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX | SEM_NOOPENFILEERRORBOX);
    SetUnhandledExceptionFilter(on_fault);
    _setmode(_fileno(stdin), _O_BINARY);
    /* Keep the protocol pipe private: whatever the library prints goes to stderr. */
    int out = _dup(_fileno(stdout));
    _dup2(_fileno(stderr), _fileno(stdout));
    replies = _fdopen(out, "wb");
    setvbuf(replies, NULL, _IOFBF, 1 << 16);
    line = malloc(MAX_LINE);
    fprintf(replies, "SSPI-AGENT %d\n", PROTOCOL_VERSION);
    fflush(replies);
    while (fgets(line, MAX_LINE, stdin)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (!strcmp(line, "QUIT")) break;
        serve_one();
        fflush(replies);
    }
    return 0;
}
