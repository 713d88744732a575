/* channel.pml: spin model of the ipcxx.Channel ring protocol of docs/channel.md (checked by scripts/check_model.sh). */

/*
 * What is modelled (one step of a process = one load or store or CAS of a shared word):
 *   tail / rhead / head, the record headers word0 = position|state and word1 = length|owner,
 *   the payload (the id of the message whose bytes are in a unit), the producer and consumer
 *   spin locks with takeover of a dead holder (and the consumer-lock repair), send and
 *   send_many (reserve -> copy -> commit, PAD records), receive with up to MAXCLAIM records
 *   (claim -> publish rhead -> copy out -> CONSUMED -> cooperative head advance by CAS), the
 *   death-recovery table, and death: any process may stop for good before any of its stores.
 *   A unit is one 16-byte line: a record of size L occupies L units, its header in the first;
 *   the payload written into the other units overwrites whatever header an earlier lap left
 *   there (position JUNK), as the real payload bytes do.
 *
 * Liveness detection is exact: dead[tag] is a ghost flag set at the moment of death. Futex
 * waits are blocking guards that open when a retry would see something new (a wake-up is a
 * state change; the 20 ms slice that triggers recovery is "the awaited owner is dead"). Waits
 * never offer death (a death while blocked equals a death just before or after the wait), so a
 * state where every surviving process is blocked is a real deadlock: an invalid end state.
 *
 * Fixes of the protocol as first written in docs/channel.md (each on by default; -DDOC_*
 * restores the text as first written, and scripts/check_model.sh shows spin finds a violation):
 *   DOC_NO_ADVANCE  a producer waiting for space does not itself advance head over records that
 *                   are CONSUMED/PAD/ABANDONED (only the consumer that marks does): deadlock when
 *                   that consumer died between CONSUMED and the CAS, or when the record at head is
 *                   PAD/ABANDONED that a consumer walk stepped over.
 *   DOC_STALE       every header read that finds another position raises "corrupted": but the
 *                   head advance and the recoverers read at a head/rhead they loaded earlier,
 *                   whose slot may already hold a later lap (a false "corrupted").
 *   DOC_RHEAD       the producer's CLAIMED -> CONSUMED recovery at head does not check that the
 *                   record is below rhead: it takes an unpublished claim of a consumer that died
 *                   inside the consumer lock (counted lost although the repair would redeliver it,
 *                   and the walk then meets a CONSUMED record at rhead), or - reading word0 and
 *                   word1 apart - a record already re-claimed by a live consumer.
 *   DOC_REPAIR      the consumer-lock repair walks from rhead only while CLAIMED by the dead tag: it
 *                   stops at a PAD/ABANDONED the dead holder stepped over, leaving its later claims
 *                   CLAIMED above rhead forever.
 * End of stream (docs/channel.md "End of stream"): each producer declares itself before its first
 * reservation (mark its slot uncounted -> one fetch_add of the stream word: producers + 1 and
 * declarations + 1 -> mark counted) and finishes after its last commit (CAS its mark -> 0, then
 * producers - 1). A consumer whose walk found nothing checks the end: one load of the stream word
 * (declarations > 0 and producers == 0: ended), else a scan of the marks (a dead owner's mark is
 * retired: CAS -> 0, then producers - 1 if it was counted; a live mark: not ended) bracketed by two
 * loads of declarations (ended only if unchanged); only then does it read rhead and tail (drained:
 * rhead >= tail). Producers may die at every one of these steps, consumers while retiring. A
 * consumer that sees the end while a producer has still to declare (a late joiner) keeps
 * receiving: the late producer reopens the stream.
 * Deliberately broken variants (must fail):
 *   BUG_EOS_DRAIN_FIRST     the consumer reads rhead/tail before it checks that producers ended.
 *   BUG_EOS_MARK_LATE       a declaring producer counts itself before it marks its slot.
 *   BUG_EOS_NO_SEQ          the scan does not compare declarations before and after.
 *   BUG_EOS_UNCOUNTED       a retired mark is decremented even when it was never counted.
 *   BUG_NO_REPAIR           the consumer-lock takeover skips the repair.
 *   BUG_COMMIT_BEFORE_COPY  the producer commits before it copies the payload.
 *   STRICT_COUNTERS         requires lost/abandoned to be exact although a recoverer can die between
 *                           its CAS and its counter increment (a documented limit, see channel.md).
 */

#ifndef C
#define C 4            /* ring capacity in units; a record is at most C/2 units */
#endif
#define NP 2           /* producers: tags 1..NP */
#define NC 2           /* consumers: tags NP+1..NP+NC */
#ifndef M
#define M 2            /* messages per producer */
#endif
#ifndef MAXCLAIM
#define MAXCLAIM 2     /* records one receive may claim */
#endif
#ifndef MAXPD
#define MAXPD 1        /* producer deaths per run */
#endif
#ifndef MAXCD
#define MAXCD 1        /* consumer deaths per run */
#endif
#ifndef MANY
#define MANY 1         /* producer 1 sends with send_many (all its messages in one call) */
#endif
#define NM (NP * M)

/* record sizes in units: producer 1 sends 2,1,2,..., producer 2 sends 1,2,1,... so that PADs occur */
#define SIZE(i, k) (1 + ((i) + (k)) % 2)
#define ID(i, k) (((i) - 1) * M + (k) + 1)
#define PRODUCER_OF(id) (((id) - 1) / M + 1)

/* record states (word0's low bits) */
#define FREE 0
#define RESERVED 1
#define COMMITTED 2
#define CLAIMED 3
#define CONSUMED 4
#define PAD 5
#define ABANDONED 6
#define JUNK 255       /* position field of a header overwritten by payload bytes */

/* ghost life of a message */
#define M_UNSENT 0
#define M_RESERVED 1
#define M_COMMITTED 2
#define M_CLAIMED 3    /* handed out: rhead published past it */
#define M_DELIVERED 4  /* marked CONSUMED by its consumer */
#define M_ABANDONED 5
#define M_LOST 6       /* CLAIMED -> CONSUMED by a recoverer */

byte tail, rhead, head;
byte plock, clock;                    /* 0 or the holder's tag */
byte pos[C], st[C];                   /* word0 */
byte ln[C], own[C];                  /* word1 */
byte data[C];                         /* payload: id of the message whose bytes a unit holds */
byte lost, abandoned;                 /* the shared counters */
byte mark[NP + 1];                    /* slot words: 0, MARKED, MARKED|COUNTED */
byte pcount, pseq;                    /* the stream word: producers (low), declarations (high) */

/* ghosts */
bool dead[NP + NC + 1];
bool done[NP + 1];                    /* producer sent everything */
byte gid[C];                          /* message a header belongs to */
byte mstat[NM + 1];
bool copied[NM + 1];                  /* its producer finished the copy */
byte claimer[NM + 1];
byte lastpub[NP + 1];                 /* FIFO: last id per producer handed out */
byte pdeaths, cdeaths;
byte uncounted_ab, uncounted_lost;    /* recoverer died between its CAS and its increment */
bool decl[NP + 1];                    /* its fetch_add on the stream word is done */
byte eos;                             /* ends of stream seen by consumers */

/* A record that is CONSUMED or ABANDONED is never read again except its position, state and
 * length (the head advance): its owner and payload are set to 0 (values nobody reads; a stale
 * payload of 0 fails the copy check like any other stale value), which merges states that
 * differ only there. -DFINE keeps them. */
#ifdef FINE
#define FORGET(x) skip
#else
#define FORGET(x) own[x] = 0; gid[x] = 0; data[x] = 0; if :: ln[x] == 2 -> data[((x) + 1) % C] = 0 :: else fi
#endif

#define INV assert(head <= rhead && rhead <= tail && tail <= head + C)
#define ALLFINISHED ((done[1] || dead[1]) && (done[2] || dead[2]))
#define MARKED 2
#define COUNTED 1
/* every producer has declared (or died first): a consumer that sees the end may stop */
#define ALLDECLARED ((decl[1] || dead[1]) && (decl[2] || dead[2]))
/* a retry of the end check could now say "ended" (the finisher's wake-up, or the slice after
 * which a waiter scans: no live mark) */
/* The check said "ended" (its linearization point): no declared producer is alive and unfinished.
 * Remember who had declared: their messages must all be handed out once the ring is drained. */
#define ENDED_NOW assert(!decl[1] || done[1] || dead[1]); assert(!decl[2] || done[2] || dead[2]); \
  snap = (decl[1] -> 2 : 0) | (decl[2] -> 4 : 0)
#define ENDABLE (pseq > 0 && (pcount == 0 || ((mark[1] == 0 || dead[1]) && (mark[2] == 0 || dead[2]))))

/* Death instead of the next store: at most MAXPD producers and MAXCD consumers per run. */
#define DIE_GUARD ((me <= NP && pdeaths < MAXPD) || (me > NP && cdeaths < MAXCD))
#define DIE_EFFECT if :: me <= NP -> pdeaths++ :: else -> cdeaths++ fi; dead[me] = true
#define DIE atomic { DIE_GUARD -> DIE_EFFECT }; goto died
#define STEP(s) if :: DIE :: s fi

/* Cooperative head advance (consumer step 3; also a producer after a recovery and, fixed,
 * while it waits for space). Uses the caller's hh, r, p, s, l. */
inline advance_head() {
  do
  :: hh = head;
     /* rhead, then the header (reading rhead here rather than before is the same: it only grows) */
     d_step { r = rhead; if :: hh < r -> p = pos[hh % C]; s = st[hh % C]; l = ln[hh % C] :: else fi }
     if
     :: hh >= r -> break
     :: else
     fi;
     if
     :: p != hh ->
#ifdef DOC_STALE
        assert(p == hh)               /* "corrupted" */
#else
        /* the slot holds a later lap: head has moved on (anything else is real corruption) */
        assert(head != hh)
#endif
     :: p == hh && (s == CONSUMED || s == PAD || s == ABANDONED) ->
        STEP(atomic { if :: head == hh -> head = hh + l; INV :: else fi })
     :: else -> break
     fi
  od;
  hh = 0; r = 0; p = 0; s = 0; l = 0
}

/* CAS word0 (x, RESERVED) -> (x, ABANDONED), then abandoned += 1. Uses ok, s, o. */
inline abandon(x) {
  STEP(atomic {
    if
    :: pos[(x) % C] == (x) && st[(x) % C] == RESERVED ->
       st[(x) % C] = ABANDONED;
       assert(mstat[gid[(x) % C]] == M_RESERVED && dead[PRODUCER_OF(gid[(x) % C])]);
       mstat[gid[(x) % C]] = M_ABANDONED;
       FORGET((x) % C);
       ok = true
    :: else -> ok = false
    fi });
  if
  :: ok -> if
           :: atomic { DIE_GUARD -> uncounted_ab++; DIE_EFFECT }; goto died
           :: abandoned++
           fi
  :: else
  fi;
  ok = false
}


/* Copy unit u of record j of the current call. */
inline copy_unit() {
  x = (rp[j] + u) % C;
  data[x] = ID(me, k + j);
  if
  :: u > 0 -> pos[x] = JUNK; st[x] = FREE; gid[x] = 0
  :: else
  fi;
  if
  :: u + 1 == SIZE(me, k + j) -> copied[ID(me, k + j)] = true
  :: else
  fi;
  x = 0
}

proctype producer(byte me) {
  byte k;                 /* next message to send */
  byte cnt;               /* records reserved by the current call */
  byte rp[M];             /* their positions */
  byte t, h, q, j, u, x;
  byte hh, r, p, s, l, o;
  bool ok;

  /* declare: mark the slot (uncounted), count (producers and declarations in one fetch_add),
   * mark counted. A death between leaves an uncounted mark or a count without a counted mark:
   * the count then stays high, never low. */
#ifdef EOS
#ifndef BUG_EOS_MARK_LATE
  STEP(mark[me] = MARKED);
  STEP(atomic { pcount++; pseq++; decl[me] = true });
#else
  STEP(atomic { pcount++; pseq++; decl[me] = true });
  STEP(mark[me] = MARKED);
#endif
  STEP(mark[me] = MARKED | COUNTED);
#endif

call:
  if
  :: k >= M -> goto finish
  :: else
  fi;
  /* 1. under the producer lock: lay out at tail, check space, store headers, move tail */
  if
  :: atomic { plock == 0 -> plock = me; t = tail }
  :: atomic { plock != 0 && dead[plock] -> plock = me; t = tail }   /* takeover: no repair */
  fi;
  d_step {
    h = head;
    p = t; cnt = 0;
    do
    :: cnt < M - k && (cnt == 0 || (MANY && me == 1)) ->
       q = p;
       if
       :: q % C + SIZE(me, k + cnt) > C -> q = q + C - q % C   /* a PAD first */
       :: else
       fi;
       if
       :: q + SIZE(me, k + cnt) - h <= C -> rp[cnt] = q; p = q + SIZE(me, k + cnt); cnt++
       :: else -> break
       fi
    :: else -> break
    od;
    q = 0
  }
  if
  :: cnt == 0 ->
     STEP(plock = 0);
     goto space
  :: else
  fi;
  p = t; j = 0;
  do
  :: j < cnt ->
     if
     :: rp[j] != p ->
#ifdef FINE
        STEP(atomic { ln[p % C] = rp[j] - p; own[p % C] = me });
        STEP(atomic { pos[p % C] = p; st[p % C] = PAD; gid[p % C] = 0 })
#else
        STEP(atomic { ln[p % C] = rp[j] - p; own[p % C] = me; pos[p % C] = p; st[p % C] = PAD; gid[p % C] = 0 })
#endif
     :: else
     fi;
     x = rp[j];
#ifdef FINE
     STEP(atomic { ln[x % C] = SIZE(me, k + j); own[x % C] = me });
     STEP(atomic { pos[x % C] = x; st[x % C] = RESERVED; gid[x % C] = ID(me, k + j) });
#else
     STEP(atomic { ln[x % C] = SIZE(me, k + j); own[x % C] = me;
                   pos[x % C] = x; st[x % C] = RESERVED; gid[x % C] = ID(me, k + j) });
#endif
     p = x + SIZE(me, k + j);
     j++
  :: else -> break
  od;
  STEP(d_step {
    tail = p; INV;
    j = 0;
    do
    :: j < cnt -> assert(mstat[ID(me, k + j)] == M_UNSENT); mstat[ID(me, k + j)] = M_RESERVED; j++
    :: else -> break
    od });
  STEP(plock = 0);
  p = 0; t = 0; h = 0; x = 0;

#ifdef BUG_COMMIT_BEFORE_COPY
  j = 0;
  do
  :: j < cnt -> STEP(d_step { st[rp[j] % C] = COMMITTED; mstat[ID(me, k + j)] = M_COMMITTED }); j++
  :: else -> break
  od;
#endif
  /* 2. copy the payloads (no lock); payload units after the first overwrite old headers.
   * One step per record (a death in the middle of a copy leaves a RESERVED record that is
   * never read either way); -DFINE: one step per unit. */
  j = 0;
  do
  :: j < cnt ->
     u = 0;
#ifdef FINE
     do
     :: u < SIZE(me, k + j) -> STEP(d_step { copy_unit() }); u++
     :: else -> break
     od;
#else
     STEP(d_step { do :: u < SIZE(me, k + j) -> copy_unit(); u++ :: else -> break od });
#endif
     u = 0;
     j++
  :: else -> break
  od;
#ifndef BUG_COMMIT_BEFORE_COPY
  /* 3. commit each record (seq_cst store of word0) */
  j = 0;
  do
  :: j < cnt ->
     STEP(d_step {
       st[rp[j] % C] = COMMITTED;
       assert(mstat[ID(me, k + j)] == M_RESERVED);
       mstat[ID(me, k + j)] = M_COMMITTED });
     j++
  :: else -> break
  od;
#endif
  /* 4. the wake-up is the state change itself */
  atomic { k = k + cnt; j = 0; do :: j < M -> rp[j] = 0; j++ :: else -> break od; j = 0; cnt = 0 }
  goto call;

space:
  /* Wait for space (the lock is released). Wakes when head moved, or when the record at head
   * can be recovered (owner dead) or, fixed, stepped over. */
  atomic {
    (head != h
    || (pos[head % C] == head && dead[own[head % C]]
        && (st[head % C] == RESERVED
#ifdef DOC_RHEAD
            || st[head % C] == CLAIMED
#else
            || (st[head % C] == CLAIMED && head < rhead)
#endif
           ))
#ifndef DOC_NO_ADVANCE
    || (head < rhead && pos[head % C] == head
        && (st[head % C] == CONSUMED || st[head % C] == PAD || st[head % C] == ABANDONED))
#endif
    )
  }
  if
  :: head != h -> h = 0; goto call
  :: else
  fi;
#ifndef DOC_NO_ADVANCE
  advance_head();
  if
  :: head != h -> h = 0; goto call
  :: else
  fi;
#endif
  /* recovery at head */
#ifndef DOC_RHEAD
  r = rhead;                          /* before the header: a record below it is published */
#endif
  d_step { p = pos[h % C]; s = st[h % C] }
  if
  :: p != h ->
#ifdef DOC_STALE
     assert(p == h)                   /* "corrupted" */
#else
     assert(head != h)                /* a later lap: head moved on */
#endif
  :: p == h && s == RESERVED ->
     o = own[h % C];
     if
     :: dead[o] -> abandon(h)
     :: else
     fi
#ifdef DOC_RHEAD
  :: p == h && s == CLAIMED ->
#else
  :: p == h && s == CLAIMED && h < r ->
#endif
     o = own[h % C];
     if
     :: dead[o] ->
        STEP(atomic {
          if
          :: pos[h % C] == h && st[h % C] == CLAIMED ->
             st[h % C] = CONSUMED;
             assert(mstat[gid[h % C]] == M_CLAIMED && dead[claimer[gid[h % C]]]);
             mstat[gid[h % C]] = M_LOST;
             claimer[gid[h % C]] = 0;
             FORGET(h % C);
             ok = true
          :: else -> ok = false
          fi });
        if
        :: ok -> if
                 :: atomic { DIE_GUARD -> uncounted_lost++; DIE_EFFECT }; goto died
                 :: lost++
                 fi;
                 ok = false;
                 advance_head()
        :: else
        fi
     :: else
     fi
  :: else
  fi;
  p = 0; s = 0; o = 0; r = 0;
  if
  :: head != h -> h = 0; goto call
  :: else -> goto space
  fi;

finish:
#ifdef EOS
  /* finish after the last commit: CAS the own mark -> 0, then producers - 1 */
  STEP(atomic { assert(mark[me] == (MARKED | COUNTED)); mark[me] = 0; done[me] = true });
  STEP(atomic { assert(pcount > 0); pcount-- });
#else
  done[me] = true;
#endif
died:
  skip
}

proctype consumer(byte me) {
  byte h, t, n, j, x, u;
  byte cp[MAXCLAIM];      /* positions claimed by this receive */
  byte hh, r, p, s, l, o;
  byte ws, wc;            /* the stream word as loaded */
  bool alld;              /* ghost: every producer had declared (or died) when the check began */
  byte snap;              /* ghost: producers declared when the check said "ended" (bit p) */
  bool ok;

receive:
  /* 1. under the consumer lock */
  if
  :: atomic { clock == 0 -> clock = me; h = rhead }
  :: atomic { clock != 0 && dead[clock] -> o = clock; clock = me; h = rhead } ->
#ifndef BUG_NO_REPAIR
     /* repair: revert the dead holder's unpublished claims at and after rhead */
     x = h;
     do
     :: d_step { x < tail -> assert(pos[x % C] == x); s = st[x % C]; l = ln[x % C]; u = own[x % C] }
        if
#ifdef DOC_REPAIR
        :: s == CLAIMED && u == o ->
#else
        :: s == CLAIMED ->            /* only a dead holder claims above rhead */
#endif
           STEP(st[x % C] = COMMITTED);
           x = x + l
#ifndef DOC_REPAIR
        :: s == PAD || s == ABANDONED -> x = x + l
#endif
        :: else -> break
        fi
     :: else -> break
     od;
     x = 0; s = 0; l = 0; u = 0;
#endif
     o = 0
  fi;
  n = 0;
  do
  :: n < MAXCLAIM ->
     /* tail, then the header below it (the same as two loads: tail only grows) */
     d_step { t = tail; if :: h < t -> assert(pos[h % C] == h); s = st[h % C]; l = ln[h % C] :: else fi }
     if
     :: h >= t -> break
     :: else
     fi;
     if
     :: s == PAD || s == ABANDONED -> h = h + l
     :: s == RESERVED -> break
     :: s == COMMITTED ->
#ifdef FINE
        STEP(own[h % C] = me);        /* word1 = length | my tag */
        STEP(st[h % C] = CLAIMED);
#else
        STEP(atomic { own[h % C] = me; st[h % C] = CLAIMED });
#endif
        cp[n] = h; n++;
        h = h + l
     :: else -> assert(s != CLAIMED && s != CONSUMED && s != FREE)  /* at or after rhead: not repaired */
     fi
  :: else -> break
  od;
  t = 0; s = 0; l = 0;
  STEP(d_step {
    rhead = h; INV;
    j = 0;
    do
    :: j < n ->
       x = gid[cp[j] % C];
       assert(mstat[x] == M_COMMITTED);
       assert(lastpub[PRODUCER_OF(x)] < x);        /* FIFO per producer */
       lastpub[PRODUCER_OF(x)] = x;
       mstat[x] = M_CLAIMED; claimer[x] = me;
       j++
    :: else -> break
    od;
    j = 0; x = 0 });
  STEP(clock = 0);
  if
  :: n == 0 -> goto endcheck
  :: else
  fi;
  h = 0;
  /* 2. copy out, 3. mark CONSUMED (the copy is checked when the record is marked: every unit
   * holds the claimed message, completely written), then advance head */
  j = 0;
  do
  :: j < n ->
     STEP(d_step {
       x = cp[j] % C;
       assert(pos[x] == cp[j] && st[x] == CLAIMED && own[x] == me);
       assert(gid[x] != 0 && copied[gid[x]] && mstat[gid[x]] == M_CLAIMED);
       u = 0;
       do
       :: u < ln[x] -> assert(data[(cp[j] + u) % C] == gid[x]); u++
       :: else -> break
       od;
       st[x] = CONSUMED;
       mstat[gid[x]] = M_DELIVERED;
       claimer[gid[x]] = 0;
       FORGET(x);
       x = 0; u = 0 });
     j++
  :: else -> break
  od;
  atomic { j = 0; do :: j < MAXCLAIM -> cp[j] = 0; j++ :: else -> break od; j = 0; n = 0 }
  advance_head();
  goto receive;

endcheck:
  skip;
#ifdef EOS
  /* Nothing to take at h (where the walk stopped). End of stream? First the producers, then
   * the ring. */
#ifdef BUG_EOS_DRAIN_FIRST
  d_step { r = rhead; t = tail };
#endif
  d_step { ws = pseq; wc = pcount; alld = ALLDECLARED; if :: ws > 0 && wc == 0 -> ENDED_NOW :: else fi };
  if
  :: ws == 0 -> goto notended                /* no producer yet: not started */
  :: ws > 0 && wc == 0 -> goto ended         /* fast: nobody counted */
  :: else
  fi;
  /* scan the marks (a real waiter scans after each sleep slice); retire the dead */
  p = 1;
  do
  :: p <= NP ->
     o = mark[p];
     if
     :: o == 0
     :: o != 0 && !dead[p] -> goto notended  /* a live producer (or one declaring) */
     :: o != 0 && dead[p] ->
        STEP(atomic { if :: mark[p] == o -> mark[p] = 0; ok = true :: else -> ok = false fi });
#ifndef BUG_EOS_UNCOUNTED
        if
        :: ok && (o & COUNTED) -> STEP(atomic { assert(pcount > 0); pcount-- })
        :: else
        fi;
#else
        if
        :: ok && pcount > 0 -> STEP(pcount--)
        :: else
        fi;
#endif
        ok = false
     fi;
     o = 0;
     p++
  :: else -> break
  od;
  p = 0;
#ifndef BUG_EOS_NO_SEQ
  /* declarations again (one load): someone declared during the scan? */
  d_step { if :: pseq != ws -> ok = false :: else -> ENDED_NOW; ok = true fi };
  if
  :: !ok -> goto notended
  :: else -> ok = false
  fi;
#else
  d_step { ENDED_NOW };
#endif
ended:
  skip;
#ifndef BUG_EOS_DRAIN_FIRST
  d_step { r = rhead; t = tail };
#endif
  if
  :: r < t -> goto notended                  /* left in the ring: receive it (or its recovery) */
  :: else
  fi;
  /* End of stream: every declared producer finished or died, and every message it committed
   * was handed out (delivered, or lost with its consumer), every reservation abandoned. */
  d_step {
    eos++;
    p = 1;
    do
    :: p <= NM ->
       assert(!(snap & (1 << PRODUCER_OF(p))) || (mstat[p] != M_COMMITTED && mstat[p] != M_RESERVED));
       p++
    :: else -> break
    od;
    p = 0; r = 0; t = 0; ws = 0; wc = 0; snap = 0
  }
  if
  :: alld -> goto finish
  :: else                                    /* a producer still to join reopens the stream */
  fi;
notended:
  r = 0; t = 0; ws = 0; wc = 0; alld = false; snap = 0;
wait:
  /* wait for new data, another consumer's progress, the owner's commit or death, or the end */
  atomic {
    (rhead != h
     || (tail > h && (st[h % C] != RESERVED || dead[own[h % C]]))
     || (tail <= h && ENDABLE))
  }
#else
wait:
  /* Nothing to take at h: wait for new data, another consumer's progress, the owner's commit
   * or death, or the end of all producers (a ghost: without -DEOS consumers stop when every
   * producer has finished or died and the ring is drained). */
  atomic {
    (rhead != h
     || (tail > h && (st[h % C] != RESERVED || dead[own[h % C]]))
     || (tail <= h && ALLFINISHED))
  }
  if
  :: ALLFINISHED && rhead >= tail -> goto finish
  :: else
  fi;
#endif
  /* recovery at rhead */
  h = 0;
  r = rhead;
  if
  :: r < tail ->
     d_step { p = pos[r % C]; s = st[r % C] }
     if
     :: p != r ->
#ifdef DOC_STALE
        assert(p == r)                /* "corrupted" */
#else
        assert(rhead != r)
#endif
     :: p == r && s == RESERVED ->
        o = own[r % C];
        if
        :: dead[o] -> abandon(r)
        :: else
        fi
     :: else
     fi
  :: else
  fi;
  r = 0; p = 0; s = 0; o = 0;
  goto receive;

finish:
died:
  skip
}

init {
  byte i, nab, nlost;
  atomic {
    run producer(1); run producer(2);
    run consumer(NP + 1); run consumer(NP + 2)
  }
  _nr_pr == 1;
  /* every message is exactly one of: delivered, abandoned (producer died before commit), lost
   * (its consumer died holding it: counted when a producer recovered it, else still CLAIMED),
   * never sent (its producer died first); the counters match */
  d_step {
    i = 1;
    do
    :: i <= NM ->
       assert(mstat[i] != M_RESERVED && mstat[i] != M_COMMITTED);
       assert(mstat[i] != M_UNSENT || dead[PRODUCER_OF(i)]);
       assert(mstat[i] != M_CLAIMED || dead[claimer[i]]);
       if
       :: mstat[i] == M_ABANDONED -> nab++
       :: mstat[i] == M_LOST -> nlost++
       :: else
       fi;
       i++
    :: else -> break
    od;
#ifdef STRICT_COUNTERS
    assert(abandoned == nab && lost == nlost);
#else
    assert(abandoned + uncounted_ab == nab && lost + uncounted_lost == nlost);
#endif
    INV
  }
}
